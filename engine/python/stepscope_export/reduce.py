"""Reductions of a block's output tokens `[N, D]` into pictures on the token grid `[F', H', W']`.

They follow the engine's own (`engine/src/session/reduce.rs`) step for step, so a capture
exported here and one recorded by `stepscope record` mean the same thing:

- `token_norms`: the L2 norm of each token, `[F', H', W']`.
- `pca3`: the centred tokens projected on their first three principal components,
  `[3, F', H', W']`, found by the same deterministic block power iteration (fixed start, 60
  rounds, Gram-Schmidt in f64, each component's largest loading made positive).
- `channels_first`: the tokens themselves, `[D, F', H', W']`.

Tokens are in the transformer's order: frame-major, then row, then column.
"""

from __future__ import annotations

import torch

PCA_ITERATIONS = 60
"""Rounds of the block power method (as the engine)."""

Grid = tuple[int, int, int]


def _tokens(hidden: torch.Tensor) -> torch.Tensor:
    if hidden.dim() == 3:
        if hidden.shape[0] != 1:
            raise ValueError(f"a block output of shape {list(hidden.shape)} holds several samples; expected [1, N, D]")
        hidden = hidden[0]
    if hidden.dim() != 2:
        raise ValueError(f"expected block output tokens [N, D] or [1, N, D], got {list(hidden.shape)}")
    return hidden.float()


def token_norms(hidden: torch.Tensor, grid: Grid) -> torch.Tensor:
    """L2 norm of each token: `[N, D]` -> `[F', H', W']`, f32."""
    return _tokens(hidden).square().sum(dim=-1).sqrt().reshape(grid)


def channels_first(hidden: torch.Tensor, grid: Grid) -> torch.Tensor:
    """The tokens as a channels-first grid: `[N, D]` -> `[D, F', H', W']`, f32."""
    tokens = _tokens(hidden)
    return tokens.t().contiguous().reshape(tokens.shape[1], *grid)


def pca3(hidden: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Projections of the centred tokens on their first three principal components:
    `[N, D]` -> `[3, F', H', W']`, f32 (zero rows when `D < 3`)."""
    tokens = _tokens(hidden)
    num_tokens, width = tokens.shape
    centred = tokens - tokens.mean(dim=0, keepdim=True)
    components = min(3, width)
    rows = torch.arange(width, dtype=torch.float32).unsqueeze(1)
    cols = torch.arange(components).unsqueeze(0)
    diagonal = (torch.arange(width).unsqueeze(1) % components == cols).float()
    start = diagonal + (rows + 1.0) / (width * 10.0)
    basis = start.to(tokens.device)
    centred_t = centred.t().contiguous()
    gram = centred_t @ centred if width <= num_tokens else None
    for _ in range(PCA_ITERATIONS):
        grown = gram @ basis if gram is not None else centred_t @ (centred @ basis)
        basis = _orthonormal_columns(grown)
    basis = _fix_signs(basis)
    projections = (centred @ basis).t().contiguous()
    if components < 3:
        padding = torch.zeros(3 - components, num_tokens, dtype=torch.float32, device=tokens.device)
        projections = torch.cat([projections, padding])
    return projections.reshape(3, *grid)


def _orthonormal_columns(matrix: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt on the columns of a small `[D, k]` matrix, in f64 on the host; f32 result."""
    columns = matrix.t().to(device="cpu", dtype=torch.float64)
    basis: list[torch.Tensor] = []
    for column in columns:
        vector = column.clone()
        for done in basis:
            vector -= (vector * done).sum() * done
        norm = vector.square().sum().sqrt().item()
        vector *= 1.0 / norm if norm > 1e-30 else 0.0
        basis.append(vector)
    return torch.stack(basis).to(torch.float32).t().contiguous().to(matrix.device)


def _fix_signs(basis: torch.Tensor) -> torch.Tensor:
    """Flips each column so that its largest-magnitude entry (the first, on ties) is positive."""
    columns = basis.t()
    peaks = columns.gather(1, columns.abs().argmax(dim=1, keepdim=True)).squeeze(1)
    signs = torch.where(peaks < 0, -1.0, 1.0).to(basis.dtype)
    return basis * signs.unsqueeze(0)
