from dagster import Definitions, asset


@asset
def orders() -> int:
    return 42


defs = Definitions(assets=[orders])
