from dagster import Definitions, asset


@asset
def model():
    return "trained"


defs = Definitions(assets=[model])
