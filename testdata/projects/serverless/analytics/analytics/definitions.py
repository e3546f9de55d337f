from dagster import Definitions, asset


@asset
def daily_report():
    return "ok"


defs = Definitions(assets=[daily_report])
