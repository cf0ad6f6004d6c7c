"""The block classifier's heads: what the temporal head adds, and that streaming computes the same."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")

from edge.train.model import BlockClassifier, StreamingWrapper, macs_per_second  # noqa: E402


def _blocks_swapped(patch: torch.Tensor, model: BlockClassifier) -> torch.Tensor:
    b = model.block_frames
    blocks = list(patch.split(b, dim=1))
    return torch.cat([blocks[1], blocks[0], *blocks[2:]], dim=1)


@pytest.mark.parametrize(("head", "order_matters"), [("pool", False), ("temporal", True)])
def test_only_the_temporal_head_hears_the_order_of_blocks(head: str, order_matters: bool) -> None:
    torch.manual_seed(0)
    model = BlockClassifier(5, head=head).eval()
    patch = torch.randn(2, 96, 64)
    with torch.no_grad():
        a, _ = model(patch)
        b, _ = model(_blocks_swapped(patch, model))
    assert (not torch.allclose(a, b, atol=1e-5)) == order_matters


def test_streaming_wrapper_with_the_temporal_head_matches_the_patch_form() -> None:
    torch.manual_seed(1)
    model = BlockClassifier(5, head="temporal").eval()
    mel = torch.randn(24 * 9, 64)
    want = model.score_sequence(mel).detach()
    wrapper = StreamingWrapper(model)
    cache = torch.zeros(1, 3, model.cache_dim)
    got = []
    with torch.no_grad():
        for k in range(9):
            scores, _, cache = wrapper(mel[24 * k: 24 * (k + 1)].unsqueeze(0), cache)
            if k >= 3:  # the first full window
                got.append(scores[0])
    torch.testing.assert_close(torch.stack(got), want, atol=1e-5, rtol=1e-4)


def test_the_temporal_head_stays_inside_the_compute_budget() -> None:
    pool = macs_per_second(BlockClassifier(19, head="pool"), 0.24)["macs_per_second"]
    temporal = macs_per_second(BlockClassifier(19, head="temporal"), 0.24)["macs_per_second"]
    assert pool < temporal <= 7e6


def test_an_unknown_head_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="head: expected 'pool' or 'temporal', got 'lstm'"):
        BlockClassifier(5, head="lstm")
