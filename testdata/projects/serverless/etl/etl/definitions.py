from dagster import Definitions, asset


@asset
def orders():
    return [1, 2, 3]


defs = Definitions(assets=[orders])
