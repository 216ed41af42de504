"""placeholder"""

from bench.common import Context, Row


def run(ctx: Context) -> list[Row]:
    return []
