"""Each configured database's account, checked once for rights beyond reading (`text2sql.privileges`), and
execution refused on one that has them unless its config sets `allow_privileged_account: true`.

A replica checks every database in a background thread when it starts; a database it could not reach then
is checked again on first use. A report is kept for the replica's life: redeploy after changing grants.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from deployments.databases import BUILTIN_DATABASES, DatabaseConfig, DatabaseConfigError
from deployments.errors import AccountUnchecked, PrivilegedAccount
from text2sql.privileges import DOCS, AccountCheckError, AccountReport, check_account

logger = logging.getLogger(__name__)


class DatabaseAccounts:
    def __init__(
        self, databases: dict[str, DatabaseConfig], *, check: Callable[[str], AccountReport] | None = None
    ) -> None:
        self._databases = databases
        self._check = check or check_account
        self._reports: dict[str, AccountReport] = {}
        self._errors: dict[str, str] = {}
        self._locks = {name: threading.Lock() for name in databases}

    def check_in_background(self) -> None:
        """Check every database now without holding up the replica; one that fails is checked on first use."""
        if self._databases:
            threading.Thread(target=self._check_all, name="database-accounts", daemon=True).start()

    def report(self, name: str) -> AccountReport:
        """The account report of database `name`, checked once; AccountCheckError or DatabaseConfigError
        when it cannot be checked now."""
        cached = self._reports.get(name)
        if cached is not None:
            return cached
        with self._locks[name]:  # one check per database however many requests wait for it
            cached = self._reports.get(name)
            if cached is None:
                config = self._databases[name]
                try:
                    # The bundled samples are SQLite files, opened read-only: nothing to build or check.
                    cached = AccountReport(backend="sqlite") if config.url in BUILTIN_DATABASES else self._check(
                        config.resolve_url()
                    )
                except (AccountCheckError, DatabaseConfigError) as e:
                    self._errors[name] = str(e)
                    raise
                self._reports[name] = cached
                self._errors.pop(name, None)
                self._log(name, cached, config)
        return cached

    def ensure_may_execute(self, name: str) -> None:
        """Raise PrivilegedAccount (403) when the account can do more than read and the config does not allow
        it, AccountUnchecked (503) when it cannot be checked: unchecked is never taken for read-only."""
        try:
            report = self.report(name)
        except (AccountCheckError, DatabaseConfigError) as e:
            raise AccountUnchecked(
                f"database {name!r} cannot be executed on until its account is checked: {e}",
                param="database",
                headers={"Retry-After": "10"},
            ) from None
        if not report.read_only and not self._databases[name].allow_privileged_account:
            raise PrivilegedAccount(
                f"execution on database {name!r} is refused: its account {report.account} can do more than read: "
                f"{report.rights_text()}. To fix it, {report.fix_text()} To run anyway, set "
                f"allow_privileged_account: true for this database ({DOCS}).",
                param="database",
            )

    def listing(self, name: str) -> dict[str, object]:
        """What GET /v1/databases shows about the account: `privileged` (null until checked) and `warnings`."""
        report = self._reports.get(name)
        if report is None:
            error = self._errors.get(name)
            reason = f": {error}" if error else ""
            return {"privileged": None, "warnings": [f"the account has not been checked yet{reason}"]}
        if report.read_only:
            return {"privileged": False, "warnings": []}
        if self._databases[name].allow_privileged_account:
            warning = (
                f"the account {report.account} can do more than read ({report.rights_text()}); queries run on it "
                f"because allow_privileged_account is true. Use a read-only account instead ({DOCS})."
            )
        else:
            warning = (
                f"execution is refused: the account {report.account} can do more than read "
                f"({report.rights_text()}). Use a read-only account, or set allow_privileged_account: true ({DOCS})."
            )
        return {"privileged": True, "warnings": [warning]}

    def check_unchecked(self) -> None:
        """Check the databases never tried yet (blocking); for listings right after start."""
        for name in self._databases:
            if name not in self._reports and name not in self._errors:
                self._try(name)

    def _check_all(self) -> None:
        for name in self._databases:
            self._try(name)

    def _try(self, name: str) -> None:
        try:
            self.report(name)
        except (AccountCheckError, DatabaseConfigError) as e:
            logger.warning("cannot check the account of database %r yet (%s); checking again on first use", name, e)

    def _log(self, name: str, report: AccountReport, config: DatabaseConfig) -> None:
        if report.read_only:
            logger.info("database %r: the account %s can only read", name, report.account or "(file)")
        elif config.allow_privileged_account:
            logger.warning(
                "database %r: the account %s can do more than read (%s); queries run on it anyway because "
                "allow_privileged_account is true. To fix it, %s",
                name, report.account, report.rights_text(), report.fix_text(),
            )
        else:
            logger.warning(
                "database %r: the account %s can do more than read (%s); execution on it is refused. To fix it, %s",
                name, report.account, report.rights_text(), report.fix_text(),
            )
