"""repast jobs run by Spark (`python -m repast.spark ...`), e.g. as SparkApplications of the
Kubeflow Spark Operator: deploy/overlays/spark and docs/spark.md."""
