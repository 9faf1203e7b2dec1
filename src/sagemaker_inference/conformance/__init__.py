"""Conformance kit: probe any server that speaks the SageMaker hosting contract (``sagemaker-inference check``)."""
