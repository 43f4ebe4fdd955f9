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
