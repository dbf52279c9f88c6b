"""criteo1tb_mini: AlgoPerf's criteo1tb at CPU scale, a DLRM-small on synthetic click logs (log loss)."""

from pytest_algoperf.registry import workload_family

VARIANT_CLASSES = {
    "criteo1tb_mini_layernorm": "Criteo1TbMiniLayerNormWorkload",
    "criteo1tb_mini_residual": "Criteo1TbMiniResidualWorkload",
    "criteo1tb_mini_embed_init": "Criteo1TbMiniEmbedInitWorkload",
}

WORKLOADS = workload_family("criteo1tb_mini", "Criteo1TbMiniWorkload", VARIANT_CLASSES)
