"""egs/mini/local/score_xvectors.py: the equal-error rate of cosine scores, on hand-made trials."""

import sys

import kaldiio
import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "egs" / "mini" / "local"))
from score_xvectors import equal_error_rate, score  # noqa: E402


@pytest.mark.parametrize("scores,target,eer", [
    ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 0.0),    # separated
    ([1, 2, 3, 4], [1, 1, 0, 0], 1.0),            # reversed
    ([0.9, 0.2, 0.8, 0.1], [0, 0, 1, 1], 0.5),    # one of each on the wrong side
    ([0.1, 0.2, 0.3, 0.5, 0.4, 0.6, 0.7, 0.8], [0, 0, 0, 0, 1, 1, 1, 1], 0.25),
])
def test_equal_error_rate(scores, target, eer):
    assert equal_error_rate(scores, target) == pytest.approx(eer)


def test_needs_both_kinds_of_trials():
    with pytest.raises(ValueError, match="need target and non-target trials"):
        equal_error_rate([0.1, 0.2], [1, 1])


def test_scores_every_pair_by_cosine(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "utt2spk").write_text("a1 A\na2 A\nb1 B\n")
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/xvector.ark,{tmp_path}/xvector.scp") as w:
        w("a1", np.array([1, 0], np.float32))
        w("a2", np.array([2, 0.2], np.float32))  # cosine scoring ignores the length
        w("b1", np.array([0, 1], np.float32))
    assert score(data, tmp_path, tmp_path / "out", "toy") == 0.0
    lines = (tmp_path / "out" / "scores").read_text().splitlines()
    assert lines[0].split()[:2] == ["a1", "a2"] and lines[0].endswith("target")
    assert float(lines[1].split()[2]) == 0.0 and lines[1].endswith("nontarget")
    assert (tmp_path / "out" / "eer").read_text() == "0.00\n"
