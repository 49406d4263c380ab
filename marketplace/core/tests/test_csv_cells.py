from marketplace.core.csv_cells import csv_text


def test_text_a_spreadsheet_would_run_gets_an_apostrophe():
    assert [csv_text(v) for v in ["=1+1", "+33", "-2", "@SUM(A1)", "\tx", "\rx"]] == [
        "'=1+1", "'+33", "'-2", "'@SUM(A1)", "'\tx", "'\rx"
    ]  # fmt: skip


def test_other_text_is_kept_and_nothing_is_empty():
    assert (csv_text("Ann's shop"), csv_text("1-800"), csv_text(""), csv_text(None)) == ("Ann's shop", "1-800", "", "")
