"""GraphQL shape of the pipeline summary (forecast and funnel)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import strawberry

from crm_graph.graphql.money import Money
from crm_graph.sales.schema.types import Pipeline, PipelineStage
from crm_graph.sales.service import reports


def _money(amount: Decimal, currency: str | None) -> Money | None:
    return Money.of(amount, currency) if currency else None


@strawberry.type(description="The opportunities in one stage.")
class StageSummary:
    stage: PipelineStage = strawberry.field(description="The stage these figures are for.")
    count: int = strawberry.field(description="Opportunities in the stage, counting those in range and in `currency`.")
    amount: Money | None = strawberry.field(description="Sum of the amounts; null when there is no currency to report in.")
    weighted_amount: Money | None = strawberry.field(description="Sum of amount x probability.")


@strawberry.type(description="Open opportunities expected to close in one month: the forecast.")
class MonthForecast:
    month: str = strawberry.field(description="`YYYY-MM`.")
    count: int = strawberry.field(description="Open opportunities expected to close that month.")
    amount: Money = strawberry.field(description="Sum of their amounts.")
    weighted_amount: Money = strawberry.field(description="Sum of amount x probability.")


@strawberry.type(
    description="Forecast and funnel of one pipeline, computed in the database. Open opportunities count when their "
    "expected close date is in the range, closed ones when they closed in it (UTC days); without a range, all count. "
    "Figures cover one currency (`currency`); `currencies` lists every currency present."
)
class PipelineSummary:
    pipeline: Pipeline = strawberry.field(description="The pipeline summarised.")
    currency: str | None = strawberry.field(description="The currency of the figures: the one asked for, else the most used.")
    currencies: list[str] = strawberry.field(description="Currencies of the opportunities in range.")
    from_: date | None = strawberry.field(name="from", description="First day of the range, as asked; null: no lower bound.")
    to: date | None = strawberry.field(description="Last day of the range (included), as asked; null: no upper bound.")
    stages: list[StageSummary] = strawberry.field(description="Every live stage, in order, with its figures.")
    months: list[MonthForecast] = strawberry.field(description="Open opportunities by expected close month, in order.")
    open_count: int = strawberry.field(description="Open opportunities (in range and in `currency`).")
    open_amount: Money | None = strawberry.field(
        description="Sum of their amounts; null when there is no currency to report in."
    )
    weighted_forecast: Money | None = strawberry.field(description="The weighted amount of the open opportunities.")
    won_count: int = strawberry.field(description="Won opportunities (in range and in `currency`).")
    won_amount: Money | None = strawberry.field(description="Sum of their amounts; null when there is no currency to report in.")
    lost_count: int = strawberry.field(description="Lost opportunities (in range and in `currency`).")
    win_rate: float | None = strawberry.field(description="won / (won + lost), from 0 to 1; null when none closed.")
    average_days_to_win: float | None = strawberry.field(description="Mean days from creation to winning.")

    @classmethod
    def from_summary(cls, s: reports.PipelineSummary) -> PipelineSummary:
        c = s.currency
        return cls(
            pipeline=Pipeline.from_model(s.pipeline),
            currency=c,
            currencies=s.currencies,
            from_=s.date_from,
            to=s.date_to,
            stages=[
                StageSummary(stage=PipelineStage.from_model(f.stage), count=f.count, amount=_money(f.amount, c),
                             weighted_amount=_money(f.weighted, c))
                for f in s.stages
                if f.stage is not None
            ],
            months=[
                MonthForecast(month=f.month, count=f.count, amount=Money.of(f.amount, c), weighted_amount=Money.of(f.weighted, c))
                for f in s.months
                if c is not None
            ],
            open_count=s.open.count,
            open_amount=_money(s.open.amount, c),
            weighted_forecast=_money(s.open.weighted, c),
            won_count=s.won.count,
            won_amount=_money(s.won.amount, c),
            lost_count=s.lost_count,
            win_rate=float(s.win_rate) if s.win_rate is not None else None,
            average_days_to_win=float(s.average_days_to_win) if s.average_days_to_win is not None else None,
        )
