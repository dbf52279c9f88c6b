"""Synthetic molecule-like graphs with multi-task substructure labels, and their packing into flat batches.

Generator (numpy only, one ``default_rng`` per split, so the same seed gives the same arrays):

1. Size: ``MIN_NODES`` to ``MAX_NODES`` atoms, uniformly.
2. Skeleton: 0-3 rings (sizes 3-7, mostly 5 and 6) inserted at random points among chain atoms; each
   hangs off a random earlier atom by one bond. Chain atoms bond to the previous atom with probability
   ``CHAIN_PROB``, else to a random earlier atom (branches), always under a degree cap (4; 3 for ring
   atoms). Nothing else closes a cycle, so the rings are exactly the ones placed.
3. Atoms: one of ``ATOM_TYPES`` drawn by ``ATOM_WEIGHTS`` among the types whose valence fits the degree
   (halogens only as leaves). A 6-ring is aromatic with probability ``AROMATIC_PROB`` (carbon, sometimes
   nitrogen, aromatic bonds).
4. Bonds: single, upgraded to double (or triple) where both atoms have spare valence, in random order.
5. Features: nodes are a one-hot atom type plus the implicit hydrogen count / 4 (spare valence, as RDKit
   would add); edges are a one-hot bond type, stored in both directions as OGB does.
6. Labels: ``NUM_TASKS`` binary tasks, each the presence of a substructure (ring of size k, aromatic
   nitrogen, C=O, C#C, an atom of degree 4, a carbon bonded to both N and O, two rings joined by a bond,
   at least 2 halogens ...; see ``TASKS``), with positive rates of 8-51%. Some are counts that a linear
   probe on atom- and bond-type counts gets (validation mAP 0.64 over all tasks, against 0.26 for the
   constant predictor), others need one to several hops, and ring sizes are beyond what sum aggregation
   can decide exactly, so the GNN has a long learning curve (~0.70 after 1,000 AdamW steps).
   Each label is flipped with probability ``LABEL_NOISE`` and missing with probability ``MISSING_PROB``
   (weight 0), as the ~10-20% missing labels of ogbg-molpcba.

Storage is per graph, padded to ``MAX_NODES`` nodes and ``MAX_EDGES`` directed edges, so ArrayWorkload can
slice and shuffle examples; ``pack_graphs`` turns such a slice into the flat, jraph-style batch the models
read: node and edge rows of every graph back to back (at fixed offsets), plus one padding graph that owns
every padding node and edge, so the arrays have fixed sizes and JAX compiles once per batch size.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from pytest_algoperf.data_cache import disk_cached

MIN_NODES, MAX_NODES = 10, 30
MAX_EDGES = 64  # directed: a connected graph of 30 atoms with 3 rings has 29 + 3 bonds, both directions

ATOM_TYPES = ("C", "N", "O", "S", "F", "Cl", "Br")
MAX_VALENCE = np.array([4, 3, 2, 2, 1, 1, 1])
VALENCE = MAX_VALENCE.tolist()
ATOM_WEIGHTS = np.array([0.52, 0.14, 0.14, 0.06, 0.05, 0.05, 0.04])
CARBON, NITROGEN, OXYGEN, SULFUR, FLUORINE, CHLORINE, BROMINE = range(len(ATOM_TYPES))
HALOGENS = (FLUORINE, CHLORINE, BROMINE)
BOND_TYPES = ("single", "double", "triple", "aromatic")
SINGLE, DOUBLE, TRIPLE, AROMATIC = range(len(BOND_TYPES))
NODE_FEATURES = len(ATOM_TYPES) + 1  # one-hot type + implicit hydrogens / 4
EDGE_FEATURES = len(BOND_TYPES)

RING_COUNT_PROBS = np.array([0.25, 0.40, 0.25, 0.10])
RING_SIZES = np.array([3, 4, 5, 6, 7])
RING_SIZE_PROBS = np.array([0.08, 0.08, 0.30, 0.44, 0.10])
CHAIN_PROB = 0.5
AROMATIC_PROB = 0.6
AROMATIC_NITROGEN_PROB = 0.12
DOUBLE_PROB = 0.35
TRIPLE_PROB = 0.3  # of bonds that could be double and have room for a triple
LABEL_NOISE = 0.03
MISSING_PROB = 0.15

SPLIT_SEEDS = {"train": 1, "validation": 2, "test": 3}
SPLIT_SIZES = {"train": 8000, "validation": 1000, "test": 1000}


@dataclass(frozen=True)
class Molecule:
    """One generated graph, before padding, in plain Python lists (small graphs: lists beat numpy here)."""

    types: list[int]  # per atom
    bonds: list[tuple[int, int, int]]  # atom i, atom j, bond type; each bond once
    rings: list[list[int]]
    aromatic: list[bool]  # per ring
    hydrogens: list[int]  # implicit hydrogen count per atom

    @cached_property
    def neighbour_types(self) -> list[list[int]]:
        """Per atom, the types of its neighbours."""
        table: list[list[int]] = [[] for _ in self.types]
        for i, j, _ in self.bonds:
            table[i].append(self.types[j])
            table[j].append(self.types[i])
        return table

    @cached_property
    def bond_keys(self) -> set[tuple[int, int, int]]:
        """(lower atom type, higher atom type, bond type) of every bond."""
        t = self.types
        return {(min(t[i], t[j]), max(t[i], t[j]), kind) for i, j, kind in self.bonds}

    @cached_property
    def ring_atoms(self) -> set[int]:
        return {atom for ring in self.rings for atom in ring}

    def bonded(self, a: int, b: int, *kinds: int) -> bool:
        """Whether a bond joins an atom of type ``a`` to one of type ``b`` (of one of ``kinds`` if given)."""
        low, high = min(a, b), max(a, b)
        return any((low, high, kind) in self.bond_keys for kind in kinds or range(len(BOND_TYPES)))

    def count(self, *types: int) -> int:
        return sum(t in types for t in self.types)


def _carbon_with(m: Molecule, first: int, second: int) -> bool:
    """A carbon bonded to an atom of type ``first`` and another of type ``second`` (two hops)."""
    needed = 2 if first == second else 1
    return any(
        t == CARBON and first in near and near.count(second) >= needed
        for t, near in zip(m.types, m.neighbour_types, strict=True)
    )


def _ring_neighbour(m: Molecule, types: tuple[int, ...]) -> bool:
    """An atom of one of ``types``, outside every ring, bonded to a ring atom (a ring substituent)."""
    return any(
        (m.types[i] in types and i not in m.ring_atoms and j in m.ring_atoms)
        or (m.types[j] in types and j not in m.ring_atoms and i in m.ring_atoms)
        for i, j, _ in m.bonds
    )


def _linked_rings(m: Molecule) -> bool:
    """Two rings joined by a direct bond (biphenyl-like): many hops and no local feature gives it away."""
    owner = {a: r for r, ring in enumerate(m.rings) for a in ring}
    return any(i in owner and j in owner and owner[i] != owner[j] for i, j, _ in m.bonds)


def _aromatic_nitrogen(m: Molecule) -> bool:
    return any(a and any(m.types[i] == NITROGEN for i in r) for r, a in zip(m.rings, m.aromatic, strict=True))


TASKS: tuple[tuple[str, Callable[[Molecule], bool]], ...] = (
    *((f"ring{k}", lambda m, k=k: any(len(r) == k for r in m.rings)) for k in (3, 4, 5, 6, 7)),
    ("two_rings", lambda m: len(m.rings) >= 2),
    ("aromatic", lambda m: any(m.aromatic)),
    ("aromatic_n", _aromatic_nitrogen),
    ("ring_o_or_s", lambda m: any(m.types[a] in (OXYGEN, SULFUR) for a in m.ring_atoms)),
    ("carbonyl", lambda m: m.bonded(CARBON, OXYGEN, DOUBLE)),
    ("alkyne", lambda m: m.bonded(CARBON, CARBON, TRIPLE)),
    (
        "n_multiple_bond",
        lambda m: any(NITROGEN in key[:2] and key[2] in (DOUBLE, TRIPLE) for key in m.bond_keys),
    ),
    ("degree4", lambda m: any(len(near) >= 4 for near in m.neighbour_types)),
    (
        "n_three_carbons",
        lambda m: any(
            t == NITROGEN and near.count(CARBON) == 3
            for t, near in zip(m.types, m.neighbour_types, strict=True)
        ),
    ),
    ("two_halogens", lambda m: m.count(*HALOGENS) >= 2),
    ("halogen_on_ring", lambda m: _ring_neighbour(m, HALOGENS)),
    ("oxygen_on_ring", lambda m: _ring_neighbour(m, (OXYGEN,))),
    ("s_bonded_o", lambda m: m.bonded(SULFUR, OXYGEN)),
    ("n_single_n", lambda m: m.bonded(NITROGEN, NITROGEN, SINGLE)),
    ("carboxyl_like", lambda m: _carbon_with(m, OXYGEN, OXYGEN)),
    ("amide_like", lambda m: _carbon_with(m, NITROGEN, OXYGEN)),
    ("linked_rings", _linked_rings),
    ("seven_heteroatoms", lambda m: m.count(NITROGEN, OXYGEN, SULFUR) >= 7),
    ("bromine", lambda m: BROMINE in m.types),
)
NUM_TASKS = len(TASKS)


def _cumulative(weights: np.ndarray) -> list[float]:
    return (np.cumsum(weights) / weights.sum()).tolist()


# Categorical draws by bisecting cumulative tables: rng.choice(p=...) costs ~20 us a call.
_TYPE_TABLES = [_cumulative(np.where(degree <= MAX_VALENCE, ATOM_WEIGHTS, 0.0)) for degree in range(5)]
_RING_COUNT_TABLE = _cumulative(RING_COUNT_PROBS)
_RING_SIZE_TABLE = _cumulative(RING_SIZE_PROBS)
_UNIFORMS_PER_MOLECULE = 512  # more than any molecule consumes


def generate_molecule(rng: np.random.Generator) -> Molecule:
    """One molecule-like graph (see the module docstring for the recipe)."""
    uniforms = iter(rng.random(_UNIFORMS_PER_MOLECULE).tolist())

    def draw(table: list[float]) -> int:
        return min(bisect.bisect_right(table, next(uniforms)), len(table) - 1)

    def pick(items: list[int]) -> int:
        return items[int(next(uniforms) * len(items))]

    n = MIN_NODES + int(next(uniforms) * (MAX_NODES - MIN_NODES + 1))
    sizes: list[int] = []
    for _ in range(draw(_RING_COUNT_TABLE)):
        size = int(RING_SIZES[draw(_RING_SIZE_TABLE)])
        if sum(sizes) + size <= n - 2:
            sizes.append(size)
    num_chain = n - sum(sizes)
    # Ring r goes in after ``insert_at[r]`` chain atoms, so rings hang off chains as well as off rings.
    insert_at = sorted(int(next(uniforms) * (num_chain + 1)) for _ in sizes)

    degree: list[int] = []
    cap: list[int] = []  # 3 for ring atoms, so they keep room for a substituent
    pairs: list[tuple[int, int]] = []
    rings: list[list[int]] = []

    def bond(i: int, j: int) -> None:
        pairs.append((i, j))
        degree[i] += 1
        degree[j] += 1

    def open_atoms(upto: int) -> list[int]:
        return [a for a in range(upto) if degree[a] < cap[a]]

    chain_placed = 0
    while len(degree) < n:
        if len(rings) < len(sizes) and insert_at[len(rings)] <= chain_placed:
            start, size = len(degree), sizes[len(rings)]
            members = list(range(start, start + size))
            degree.extend([0] * size)
            cap.extend([3] * size)
            for k in range(size):
                bond(members[k], members[(k + 1) % size])
            if start:
                bond(pick(open_atoms(start)), pick(members))
            rings.append(members)
            continue
        atom = len(degree)
        degree.append(0)
        cap.append(4)
        if atom:
            previous = atom - 1
            if next(uniforms) < CHAIN_PROB and degree[previous] < cap[previous]:
                bond(previous, atom)
            else:
                bond(pick(open_atoms(atom)), atom)
        chain_placed += 1

    aromatic = [len(r) == 6 and next(uniforms) < AROMATIC_PROB for r in rings]
    types = [draw(_TYPE_TABLES[d]) for d in degree]
    kinds = [SINGLE] * len(pairs)
    used = list(degree)
    for ring, is_aromatic in zip(rings, aromatic, strict=True):
        if is_aromatic:
            members = set(ring)
            for atom in ring:
                types[atom] = NITROGEN if next(uniforms) < AROMATIC_NITROGEN_PROB else CARBON
                used[atom] += 1  # an aromatic atom spends its extra half bond on either side
            for k, (i, j) in enumerate(pairs):
                if i in members and j in members:
                    kinds[k] = AROMATIC
    for k in sorted(range(len(pairs)), key=lambda _: next(uniforms)):
        i, j = pairs[k]
        if kinds[k] != SINGLE:
            continue
        spare = min(VALENCE[types[i]] - used[i], VALENCE[types[j]] - used[j])
        if spare >= 1 and next(uniforms) < DOUBLE_PROB:
            order = 2 if spare >= 2 and next(uniforms) < TRIPLE_PROB else 1
            kinds[k] = TRIPLE if order == 2 else DOUBLE
            used[i] += order
            used[j] += order
    hydrogens = [max(VALENCE[t] - u, 0) for t, u in zip(types, used, strict=True)]
    bonds = [(i, j, kind) for (i, j), kind in zip(pairs, kinds, strict=True)]
    return Molecule(types, bonds, rings, aromatic, hydrogens)


@dataclass(frozen=True)
class GraphSplit:
    """Graphs padded one by one; every array's first axis is the graph."""

    nodes: np.ndarray  # (G, MAX_NODES, NODE_FEATURES) float32
    edges: np.ndarray  # (G, MAX_EDGES, EDGE_FEATURES) float32
    senders: np.ndarray  # (G, MAX_EDGES) int32, within the graph
    receivers: np.ndarray  # (G, MAX_EDGES) int32
    n_node: np.ndarray  # (G,) int32
    n_edge: np.ndarray  # (G,) int32
    targets: np.ndarray  # (G, NUM_TASKS) float32, 0 where missing
    weights: np.ndarray  # (G, NUM_TASKS) float32, 1 where the label is present
    clean_targets: np.ndarray  # (G, NUM_TASKS) bool, before noise: for tests and documentation

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-graph arrays a batch is sliced from; ``n_node`` first, so its length counts graphs."""
        names = ("n_node", "n_edge", "nodes", "edges", "senders", "receivers", "targets", "weights")
        return {name: getattr(self, name) for name in names}

    def __len__(self) -> int:
        return len(self.n_node)


def generate_split(seed: int, size: int) -> GraphSplit:
    rng = np.random.default_rng(seed)
    molecules = [generate_molecule(rng) for _ in range(size)]
    n_node = np.array([len(m.types) for m in molecules], np.int32)
    n_edge = np.array([2 * len(m.bonds) for m in molecules], np.int32)
    clean = np.array([[task(m) for _, task in TASKS] for m in molecules], bool)

    # Fill every graph at once from flat lists: per-graph numpy calls would dominate the generation time.
    node_graph = np.repeat(np.arange(size), n_node)
    node_local = np.arange(len(node_graph)) - np.repeat(np.cumsum(n_node) - n_node, n_node)
    nodes = np.zeros((size, MAX_NODES, NODE_FEATURES), np.float32)
    nodes[node_graph, node_local, [t for m in molecules for t in m.types]] = 1.0
    nodes[node_graph, node_local, -1] = np.array([h for m in molecules for h in m.hydrogens]) / 4.0
    bonds = np.array([b for m in molecules for b in m.bonds], np.int64).reshape(-1, 3)
    n_bond = n_edge // 2
    bond_graph = np.repeat(np.arange(size), n_bond)
    bond_local = np.arange(len(bond_graph)) - np.repeat(np.cumsum(n_bond) - n_bond, n_bond)
    edges = np.zeros((size, MAX_EDGES, EDGE_FEATURES), np.float32)
    senders = np.zeros((size, MAX_EDGES), np.int32)
    receivers = np.zeros((size, MAX_EDGES), np.int32)
    # Bond k of a graph becomes edges k (i -> j) and n_bond + k (j -> i).
    for slot, (src, dst) in ((bond_local, (0, 1)), (bond_local + n_bond[bond_graph], (1, 0))):
        edges[bond_graph, slot, bonds[:, 2]] = 1.0
        senders[bond_graph, slot] = bonds[:, src]
        receivers[bond_graph, slot] = bonds[:, dst]

    flips = rng.random(clean.shape) < LABEL_NOISE
    weights = (rng.random(clean.shape) >= MISSING_PROB).astype(np.float32)
    targets = (clean ^ flips).astype(np.float32) * weights
    return GraphSplit(nodes, edges, senders, receivers, n_node, n_edge, targets, weights, clean)


@lru_cache(maxsize=len(SPLIT_SEEDS))
@disk_cached(version=1)
def load_split(name: str) -> GraphSplit:
    """Split ``name``, generated once per process (outside the benchmark clock: ~1.5 s of CPU for all
    three) and cached. Disjoint splits come from different seeds; the tests check no graph repeats."""
    return generate_split(SPLIT_SEEDS[name], SPLIT_SIZES[name])


def pack_graphs(batch: Mapping[str, np.ndarray], num_slots: int | None = None) -> dict[str, np.ndarray]:
    """Flatten per-graph arrays into one jraph-style batch of ``num_slots`` graph slots plus a padding graph.

    Graph ``g`` owns node rows ``g * MAX_NODES ...`` and edge rows ``g * MAX_EDGES ...``; the rows it does
    not fill, one extra node row at the end, and empty slots all belong to the padding graph (index
    ``num_slots``), and padding edges join the extra node to itself. So sums over a real graph see only its
    own nodes and edges, every array has a size fixed by ``num_slots``, and the padding graph's outputs are
    masked out by ``graph_mask`` and by zero ``weights``.
    """
    count = len(batch["n_node"])
    slots = count if num_slots is None else num_slots
    if count > slots:
        raise ValueError(f"{count} graphs do not fit {slots} slots")
    total_nodes, total_edges = slots * MAX_NODES + 1, slots * MAX_EDGES
    pad_node = total_nodes - 1
    graph = np.arange(count, dtype=np.int32)[:, None]
    node_real = np.arange(MAX_NODES) < batch["n_node"][:, None]
    edge_real = np.arange(MAX_EDGES) < batch["n_edge"][:, None]

    nodes = np.zeros((total_nodes, NODE_FEATURES), np.float32)
    nodes[: count * MAX_NODES] = batch["nodes"].reshape(-1, NODE_FEATURES)
    edges = np.zeros((total_edges, EDGE_FEATURES), np.float32)
    edges[: count * MAX_EDGES] = batch["edges"].reshape(-1, EDGE_FEATURES)
    node_graph = np.full(total_nodes, slots, np.int32)
    node_graph[: count * MAX_NODES] = np.where(node_real, graph, slots).ravel()
    edge_graph = np.full(total_edges, slots, np.int32)
    edge_graph[: count * MAX_EDGES] = np.where(edge_real, graph, slots).ravel()
    senders = np.full(total_edges, pad_node, np.int32)
    receivers = np.full(total_edges, pad_node, np.int32)
    offset = graph * MAX_NODES
    senders[: count * MAX_EDGES] = np.where(edge_real, batch["senders"] + offset, pad_node).ravel()
    receivers[: count * MAX_EDGES] = np.where(edge_real, batch["receivers"] + offset, pad_node).ravel()
    targets = np.zeros((slots + 1, NUM_TASKS), np.float32)
    targets[:count] = batch["targets"]
    weights = np.zeros((slots + 1, NUM_TASKS), np.float32)
    weights[:count] = batch["weights"]
    graph_mask = np.arange(slots + 1) < count
    return {
        "nodes": nodes,
        "edges": edges,
        "senders": senders,
        "receivers": receivers,
        "node_graph_index": node_graph,
        "edge_graph_index": edge_graph,
        "graph_mask": graph_mask,
        "targets": targets,
        "weights": weights,
    }
