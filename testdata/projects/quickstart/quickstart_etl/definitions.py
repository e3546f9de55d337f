from dagster import Definitions, asset


@asset
def hackernews_top_story_ids() -> list[int]:
    return [1, 2, 3]


defs = Definitions(assets=[hackernews_top_story_ids])
