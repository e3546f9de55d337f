from dagster import Definitions, asset


@asset
def trained_model() -> str:
    return "model-v1"


defs = Definitions(assets=[trained_model])
