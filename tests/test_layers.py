"""lle_lib.models.layers: the padding that KinD's and pix2pix's networks share."""
import torch

from lle_lib.models.layers import pad_to_multiple


def test_padding_reflects_to_the_next_multiple_and_replicates_when_the_side_is_too_short():
    x = torch.arange(15.0).reshape(1, 1, 3, 5)
    assert pad_to_multiple(x, 1) is x                                    # already a multiple: untouched
    padded = pad_to_multiple(x, 4)                                       # 3 x 5 -> 4 x 8, bottom and right only
    assert padded.shape == (1, 1, 4, 8) and torch.equal(padded[..., :3, :5], x)
    assert torch.equal(padded[..., 3, :5], x[..., 1, :])                 # reflection: the row before the last
    assert torch.equal(padded[..., :3, 5:], x[..., :, [3, 2, 1]])
    short = pad_to_multiple(x, 8)                                        # padding 5 > side 3: replication
    assert short.shape == (1, 1, 8, 8) and torch.equal(short[..., 7, :5], x[..., 2, :])
