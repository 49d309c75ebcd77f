"""Self-attention over a padded batch, with the padding masked, on any device.

``padded_attention(q, k, v, mask)`` is ``F.scaled_dot_product_attention`` with cuDNN's attention
left out on a GPU. On Hopper GPUs torch may route a half-precision call with a padding mask to
cuDNN's backend, which builds a graph for each new shape: hundreds of milliseconds, public
reports say, and every batch of varied utterances has a new length. Measured on an H100 with
wav2vec 2.0 base in bfloat16 (bench.end_to_end, 1 h of 1-20 s utterances), the model's calls
made 737x real time on the engine's batches and 4,060x on the same batches again, once every
shape had been seen; sampled, 30% of the job's main thread sat in this call's host side. The
flash and memory-efficient kernels need no per-shape setup. float32 is unchanged (cuDNN's
backend takes no float32), and so is the CPU.
"""


def padded_attention(q, k, v, mask):
    """Attention of (B, heads, T, d) ``q``, ``k``, ``v``; ``mask``: True where a key may be
    attended to, broadcastable to (B, heads, T, T), or None."""
    import torch.nn.functional as F

    if not q.is_cuda:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
