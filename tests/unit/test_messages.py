from text2sql.messages import first_line


def test_keeps_only_the_first_line_of_a_driver_message() -> None:
    error = RuntimeError('relation "nope" does not exist\nLINE 1: SELECT * FROM nope\n              ^')
    assert first_line(error) == 'relation "nope" does not exist'


def test_cuts_long_lines_and_marks_the_cut() -> None:
    assert first_line("x" * 50, max_chars=10) == "x" * 10 + "..."
    assert first_line("x" * 10, max_chars=10) == "x" * 10


def test_an_error_without_a_message_gives_its_type_name() -> None:
    assert first_line(TimeoutError()) == "TimeoutError"
    assert first_line("  \n ") == ""
