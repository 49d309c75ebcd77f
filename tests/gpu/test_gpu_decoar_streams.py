"""DeCoAR's two LSTM directions on two CUDA streams at once give the bits of one after the other."""

import pytest
import torch

from speech_reps.models.decoar_net import DeCoAREncoder

pytestmark = pytest.mark.gpu


def test_concurrent_directions_are_bit_identical_to_sequential():
    torch.manual_seed(0)
    net = DeCoAREncoder(80, hidden=256, layers=2).to("cuda:0").eval()
    lengths = torch.tensor([700, 1300, 90])
    feats = torch.randn(3, 1300, 80, device="cuda:0")
    for b, n in enumerate(lengths):
        feats[b, n:] = 0
    with torch.inference_mode():
        concurrent = net(feats, lengths, chunk=500)
        sequential = torch.empty_like(concurrent)
        net._left_to_right(feats, 500, sequential[:, :, :256])
        net._right_to_left(feats, lengths.to("cuda:0"), 500, sequential[:, :, 256:])
        torch.cuda.synchronize()
    for b, n in enumerate(lengths):
        assert torch.equal(concurrent[b, :n], sequential[b, :n])
