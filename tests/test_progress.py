"""The progress line: a rate and an ETA from the first row on, unambiguous metric names."""

import io
import time

from tper_jit.run.logger import Progress


def test_first_row_has_a_rate_and_eta_and_names_keep_their_prefix():
    out = io.StringIO()
    p = Progress(100, "online", stream=out)
    time.sleep(0.05)
    line = p.update(10, {"env/success_rate": 0.25, "eval/success_rate": 0.5,
                         "online_agent/critic/critic_loss": 1.5},
                    ("online_agent/critic/critic_loss", "env/success_rate", "eval/success_rate"))
    assert "nan" not in line and "ETA ?" not in line, line
    rate = float(line.split("|")[1].split()[0])
    assert 0 < rate <= 10 / 0.05  # measured from the phase start (compilation included)
    assert "env/success_rate=0.25" in line and "eval/success_rate=0.5" in line
    assert "critic_loss=1.5" in line
    assert out.getvalue().strip() == line
    time.sleep(0.05)
    second = p.update(20, {}, ())
    assert float(second.split("|")[1].split()[0]) <= 10 / 0.05  # from the first row on


def test_terminal_gets_one_live_bar_and_files_get_plain_lines(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    out = io.StringIO()
    p = Progress(100, "offline", stream=out, terminal=True)
    p.update(40, {"eval/success_rate": 0.5}, ("eval/success_rate",))
    p.update(100, {"eval/success_rate": 0.75}, ("eval/success_rate",))
    p.close()
    text = out.getvalue()
    assert "\x1b[" in text  # drawn with terminal control codes (a redrawn bar)
    assert "100/100" in text and "eval/success_rate=0.75" in text and "steps/s" in text
    assert "[offline] 40/100 (40%)" not in text  # not the plain line
    p.close()  # idempotent
    plain = io.StringIO()
    q = Progress(100, "offline", stream=plain)  # a StringIO is no terminal
    q.update(40, {}, ())
    q.close()
    assert plain.getvalue().startswith("[offline] 40/100 (40%)")
    assert "\x1b[" not in plain.getvalue()


def test_a_narrow_terminal_cuts_the_metrics_not_the_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    p = Progress(1000, "online", stream=out, terminal=True)
    keys = tuple(f"online_agent/critic/loss_{i}" for i in range(8))
    p.update(500, {k: 1.0 for k in keys}, keys)
    p.close()
    last = out.getvalue().split("\r")[-1]
    assert "[online]" in last and "500/1000" in last and "ETA" in last and "…" in last
