"""User text made harmless in spreadsheets and Markdown (issue #14, finding 2)."""

from services.common.cells import markdown_text, spreadsheet_cell, spreadsheet_text


def test_a_text_a_spreadsheet_would_evaluate_gets_an_apostrophe():
    for text in ('=HYPERLINK("http://evil.example/","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert spreadsheet_cell(text) == "'" + text


def test_numbers_and_plain_text_are_left_as_they_are():
    for value in (5, -5, 1.5, "-5", "-1.5", "+3", "12%", "东风村", "a=b", "", None):
        assert spreadsheet_cell(value) == value


def test_markdown_text_has_no_tag_start_no_pipe_and_one_line():
    assert markdown_text("<script>x</script>") == "&lt;script>x&lt;/script>"
    assert markdown_text("<!-- c -->") == "&lt;!-- c -->"
    assert markdown_text("6.0 < 15.0 | a\nb") == "6.0 < 15.0 \\| a b"


def test_what_goes_out_comes_back_exactly_even_a_text_starting_with_an_apostrophe():
    for value in ("'=already quoted", "''", "'", "=1+1", "'plain", "plain", "-5", 5, None):
        assert spreadsheet_text(spreadsheet_cell(value)) == value
