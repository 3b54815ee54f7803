"""Flexible material denoiser: EGNN with k vector channels on a periodic radius graph.

Paper Sec. 4.4 and App. B.4.  One layer:

    m_ij  = MLP_edge([H_i, H_j, e_ij])            e_ij = 2 tanh(d^2 / r_cut^2) - 1 per channel
    a_ij  = sigmoid(Linear(m_ij))                 (sigmoid attention gate)
    H_i  += MLP_node([H_i, (1/Z) sum_j f_cut(r_ij) a_ij m_ij, h0_i])
    Phi_ij = Linear(m_ij)                         (k x k channel mixing; see coord_from_message)
    X_i  += (1/Z) sum_j f_cut(r_ij) Phi_ij d_ij / (sqrt(|d_ij|^2 + 1) + 1)

with ``d_ij = X_i - X_j - o_ij`` per channel (o_ij the periodic image offset), Z = 40 and
``f_cut(r) = 2 tanh^2(1 - r / r_cut)`` on the input distances.  ``h0`` is the raw node
input [time features, E, property embeddings, step-size features], re-injected at every
layer so conditioning is never washed out.  Outputs: the element component from the final
node features and the position component ``X - X^(L)[channel 0]`` (Å-scaled vector).

``coord_from_message`` (default) reads Phi_ij from the message m_ij, which is itself an MLP of
[H_i, H_j, e_ij], as the original EGNN does (phi_x(m_ij), Satorras et al. 2021); this drops
one two-layer MLP per edge and layer (~40% of the edge work on CPU).  Set it False for the
paper's separate ``MLP_coord([H_i, H_j, e_ij])`` on the updated node features.

Cost: the first Linear of the edge and coordinate MLPs acts on [H_i, H_j, e_ij]; it is
split into per-node projections gathered onto edges (``A[i] + B[j] + W_e e_ij``), which
replaces an (E x 2W) by (2W x W) matmul with an (N x W) by (W x 2W) one (E ~ 60 N here);
messages are summed with ``segment_reduce`` over receiver-sorted edges.
"""

from dataclasses import asdict, dataclass

import torch
from torch import nn

from core.graph import periodic_radius_graph
from core.model.embedding import (PropertyEmbedding, step_feature_dim, step_features,
                                  time_feature_dim, time_features)


@dataclass
class DenoiserConfig:
    """Sizes of the denoiser; saved in every checkpoint's config.json."""

    n_classes: int  # element classes including the ghost class 0
    n_properties: int = 0
    width: int = 128
    layers: int = 4
    vector_channels: int = 8
    cutoff: float = 6.5  # Å
    property_dim: int = 8
    time_frequencies: int = 4
    use_dt: bool = False  # AMShortcut: step size as an extra node input
    attention: bool = True
    coord_from_message: bool = True  # Phi_ij = Linear(m_ij) (EGNN) vs a separate MLP (paper)
    aggregation_norm: float = 40.0
    # Gaussian radial basis of the input distances added to every edge feature (0 = the
    # paper's single tanh feature).  2 tanh(r^2/r_cut^2) - 1 changes by only 0.025 per 0.1 Å
    # at a 1.6 Å Si-O bond (r_cut 5 Å), so a sharp bond-length response needs huge weights;
    # SchNet-style Gaussians spaced r_cut / n apart resolve it directly (docs/model.md).
    distance_rbf: int = 0
    # a missing property's vector: "normal" = N(0, I) as eq. 6 reads, "affine" = the same draw
    # through the property LayerNorm's learned scale and shift, "learned" = one trained vector
    # per property (``PropertyEmbedding``)
    property_null: str = "normal"
    # Gaussian bumps of each normalised property value fed to its Linear (0 = the value itself,
    # eq. 6; ``PropertyEmbedding``)
    property_features: int = 0

    def to_dict(self):
        return asdict(self)


def cutoff_weight(r, cutoff):
    """Smooth cutoff f_cut(r) = 2 tanh^2(1 - r / r_cut) for r < r_cut, else 0 (paper eq. 15)."""
    return 2.0 * torch.tanh(1.0 - r.clamp(max=cutoff) / cutoff) ** 2


def gaussian_rbf(r, cutoff, n):
    """n Gaussians exp(-(r - mu_k)^2 / (2 w^2)), mu_k evenly spaced on [0, r_cut], w = r_cut / n.

    r (E, 1) Å -> (E, n) in [0, 1]."""
    mu = torch.linspace(0.0, cutoff, n, device=r.device, dtype=r.dtype)
    width = cutoff / n
    return torch.exp(-0.5 * ((r - mu) / width) ** 2)


def mean_neighbour_weight(pos, cell, batch, cutoff):
    """Average over atoms of sum_j f_cut(r_ij): the natural ``aggregation_norm`` for a dataset.

    The paper's 1/40 matches its a-SiO2 graphs (~0.11 atoms/Å^3 with ghosts, 6.5 Å); with a
    smaller cutoff or density a fixed 40 shrinks every message sum (e.g. ~2 for 4 Å in Si),
    so the trainer sets the norm from the training data, like NequIP's avg_num_neighbors.
    """
    (row, col), shift = periodic_radius_graph(pos, cell, batch, cutoff)
    r = (pos[col] + shift - pos[row]).norm(dim=-1)
    return float(cutoff_weight(r, cutoff).sum() / pos.shape[0])


def _mlp(n_in, width, n_out=None):
    """Linear -> LayerNorm -> SiLU (-> Linear -> LayerNorm -> SiLU | -> Linear(n_out))."""
    tail = [nn.Linear(width, width), nn.LayerNorm(width), nn.SiLU()] if n_out is None \
        else [nn.Linear(width, n_out)]
    return nn.Sequential(nn.Linear(n_in, width), nn.LayerNorm(width), nn.SiLU(), *tail)


class EdgeMLP(nn.Module):
    """MLP on [H_i, H_j, e_ij] with the first layer split into gathered node projections."""

    def __init__(self, width, n_edge, n_out=None, out_gain=1.0):
        super().__init__()
        self.node_proj = nn.Linear(width, 2 * width)
        self.edge_proj = nn.Linear(n_edge, width, bias=False)
        self.norm1 = nn.LayerNorm(width)
        if n_out is None:
            self.out = nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.SiLU())
        else:
            last = nn.Linear(width, n_out, bias=False)
            nn.init.xavier_uniform_(last.weight, gain=out_gain)
            self.out = nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.SiLU(), last)

    def forward(self, h, edge_attr, row, col):
        a, b = self.node_proj(h).chunk(2, dim=-1)
        pre = a[row] + b[col] + self.edge_proj(edge_attr)
        return self.out(nn.functional.silu(self.norm1(pre)))


class EGNNLayer(nn.Module):
    """One message-passing layer: feature update with sigmoid attention, then coordinates."""

    def __init__(self, cfg: DenoiserConfig, n_raw: int):
        super().__init__()
        w, k = cfg.width, cfg.vector_channels
        self.k, self.norm, self.attention = k, cfg.aggregation_norm, cfg.attention
        n_edge = 1 + k + cfg.distance_rbf
        self.message = EdgeMLP(w, n_edge)
        if cfg.attention:
            self.gate = nn.Linear(w, 1)
        self.node = _mlp(2 * w + n_raw, w, w)
        # Small initial coordinate mixing (as in EGNN/AMDEN) keeps early updates gentle.
        self.coord_from_message = cfg.coord_from_message
        if cfg.coord_from_message:
            self.coord = nn.Linear(w, k * k, bias=False)
            nn.init.xavier_uniform_(self.coord.weight, gain=0.01)
        else:
            self.coord = EdgeMLP(w, n_edge, n_out=k * k, out_gain=0.01)

    def forward(self, h, x, raw, row, col, degree, shift, edge_attr0, cut, cutoff):
        """Edges must be sorted by receiver ``row``; ``degree`` (N,) counts them per node."""
        diff = x[row] - x[col] - shift.unsqueeze(1)  # (E, k, 3) Å, d_ij per channel
        sq = (diff * diff).sum(-1)  # (E, k)
        edge_attr = torch.cat([edge_attr0, 2.0 * torch.tanh(sq / cutoff**2) - 1.0], dim=-1)

        m = self.message(h, edge_attr, row, col)
        weight = cut
        if self.attention:
            weight = weight * torch.sigmoid(self.gate(m))
        agg = torch.segment_reduce((weight * m).to(x.dtype), "sum", lengths=degree)  # fp32 sums under bf16
        h = h + self.node(torch.cat([h, agg.to(h.dtype) / self.norm, raw], dim=-1))

        phi = self.coord(m) if self.coord_from_message else self.coord(h, edge_attr, row, col)
        phi = phi.view(-1, self.k, self.k)  # (E, k_in, k_out)
        unit = diff / (torch.sqrt(sq + 1.0) + 1.0).unsqueeze(-1)
        trans = torch.einsum("eci,eco->eoi", unit, phi.to(x.dtype)) * cut.unsqueeze(-1)
        dx = torch.segment_reduce(trans.flatten(1), "sum", lengths=degree).view_as(x)
        return h, x + dx / self.norm


class Denoiser(nn.Module):
    """EGNN denoiser: (M_t, y, t[, dt]) -> (position component (N,3), element component (N,d_E)).

    Equivariant to permutations, rotations/reflections (with the cell), translations and
    the choice of periodic image of each atom: all geometry enters through the edge vectors
    ``pos[i] - pos[j] - o_ij`` of the periodic radius graph.

    ``fast = True`` computes the same function with fewer, cheaper kernels
    (``core.model.fast``); the plain forward below is the reference it is tested against.
    """

    fast = False
    compiled = False  # with fast: the per-layer kernels compiled by torch.compile (core.model.fast.kernels)

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.cfg = cfg
        self.properties = PropertyEmbedding(cfg.n_properties, cfg.property_dim, cfg.property_null,
                                            cfg.property_features)
        n_raw = time_feature_dim(cfg.time_frequencies) + cfg.n_classes + self.properties.out_dim
        if cfg.use_dt:
            n_raw += step_feature_dim(cfg.time_frequencies)
        self.n_raw = n_raw
        self.embed = nn.Linear(n_raw, cfg.width)
        self.layers = nn.ModuleList(EGNNLayer(cfg, n_raw) for _ in range(cfg.layers))
        self.element_out = nn.Sequential(nn.LayerNorm(cfg.width), nn.Linear(cfg.width, cfg.n_classes))

    def node_input(self, elem, batch, t, y, dt):
        """Raw node features [time, E, property embeddings, step size] (N, n_raw)."""
        per_graph = [time_features(t, self.cfg.time_frequencies)]
        if self.cfg.n_properties:
            per_graph.append(self.properties(y))
        if self.cfg.use_dt:
            if dt is None:
                raise ValueError("this denoiser takes a step size dt (AMShortcut)")
            per_graph.append(step_features(dt, self.cfg.time_frequencies))
        return torch.cat([elem, torch.cat(per_graph, dim=-1)[batch]], dim=-1)

    def forward(self, pos, elem, cell, batch, t, y=None, dt=None, graph=None):
        """Predict the (position, element) components.

        pos (N,3) Å, elem (N,n_classes) continuous embeddings, cell (B,3,3) Å, batch (N,),
        t (B,) in [0,1], y (B,P) normalised properties with NaN = missing, dt (B,) step
        sizes (shortcut only).  ``graph`` = (edge_index, shift) to reuse a neighbour list.
        """
        cfg = self.cfg
        if self.fast and cfg.coord_from_message:
            from core.model.fast import fast_forward

            return fast_forward(self, pos, elem, cell, batch, t, y, dt, graph)
        if graph is None:
            graph = periodic_radius_graph(pos, cell, batch, cfg.cutoff)
        (row, col), shift = graph
        # Sorted receivers let segment_reduce sum messages.
        order = torch.argsort(row, stable=True)
        row, col, shift = row[order], col[order], shift[order].to(pos.dtype)
        degree = torch.bincount(row, minlength=pos.shape[0])
        raw = self.node_input(elem, batch, t, y, dt)
        h = self.embed(raw)

        r = (pos[row] - pos[col] - shift).norm(dim=-1, keepdim=True)
        cut = cutoff_weight(r, cfg.cutoff)
        edge_attr0 = 2.0 * torch.tanh(r**2 / cfg.cutoff**2) - 1.0
        if cfg.distance_rbf:
            edge_attr0 = torch.cat([edge_attr0, gaussian_rbf(r, cfg.cutoff, cfg.distance_rbf)], dim=-1)
        x = pos.unsqueeze(1).expand(-1, cfg.vector_channels, -1)
        for layer in self.layers:
            h, x = layer(h, x, raw, row, col, degree, shift, edge_attr0, cut, cfg.cutoff)
        return pos - x[:, 0], self.element_out(h).to(pos.dtype)


def native_bf16(device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware: a CUDA GPU with bf16 support, or a
    CPU with AMX-BF16 or AVX512-BF16. Elsewhere (e.g. an AVX2-only CPU) torch emulates it and a
    training step under autocast takes ~5x the float32 step (docs/model.md, "Training")."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))


class BFloat16Autocast:
    """Calls a network under bfloat16 autocast and returns its outputs as float32."""

    def __init__(self, network, device_type: str):
        self.network, self.device_type = network, device_type

    def __call__(self, *args, **kwargs):
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            out = self.network(*args, **kwargs)
        return tuple(o.float() for o in out)
