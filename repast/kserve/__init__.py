"""repast for KServe: a transformer that adds online features to inference requests.

`OnlineFeatureEnricher` (repast.kserve.transformer) is the logic and needs only repast;
`RepastTransformer` (repast.kserve.model, `python -m repast.kserve`) is the `kserve.Model`
around it and needs `pip install "repast[kserve]"`.
"""

from repast.kserve.transformer import OnlineFeatureEnricher, TransformerInputError

__all__ = ["OnlineFeatureEnricher", "TransformerInputError"]
