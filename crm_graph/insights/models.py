"""Stored customer-value model runs: the fitted BG/NBD and Gamma-Gamma parameters of one run,
and every customer's figures in it (so lists and dynamic segments filter on them in SQL)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_graph.core.access import guard_child, guard_object
from crm_graph.core.money import AmountType
from crm_graph.customers.models import Customer, LifecycleStage
from crm_graph.db.base import Base, IdMixin
from crm_graph.db.types import IdType, UTCDateTime, enum_column


class TimeUnit(enum.Enum):
    """The unit the model counts time in. Inputs are whole days either way; a week is 7 days."""

    DAY = "DAY"
    WEEK = "WEEK"

    @property
    def days(self) -> int:
        return 7 if self is TimeUnit.WEEK else 1


class CustomerValueRun(IdMixin, Base):
    """One fit of the purchase (BG/NBD) and spend (Gamma-Gamma) models, as of a day, over the
    counted orders of one currency. ``r``/``alpha`` are in the run's time unit."""

    __tablename__ = "customer_value_runs"

    as_of: Mapped[date] = mapped_column(sa.Date)
    time_unit: Mapped[TimeUnit] = mapped_column(enum_column(TimeUnit))
    currency: Mapped[str] = mapped_column(sa.String(3))
    customer_count: Mapped[int] = mapped_column(sa.Integer)
    repeat_customers: Mapped[int] = mapped_column(sa.Integer)
    r: Mapped[float] = mapped_column(sa.Double)
    alpha: Mapped[float] = mapped_column(sa.Double)
    a: Mapped[float] = mapped_column(sa.Double)
    b: Mapped[float] = mapped_column(sa.Double)
    log_likelihood: Mapped[float] = mapped_column(sa.Double)
    p: Mapped[float] = mapped_column(sa.Double)
    q: Mapped[float] = mapped_column(sa.Double)
    gamma: Mapped[float] = mapped_column(sa.Double)
    spend_log_likelihood: Mapped[float] = mapped_column(sa.Double)
    # The horizon and annual discount rate of the stored expected purchases and CLV.
    horizon_days: Mapped[int] = mapped_column(sa.Integer)
    discount_rate: Mapped[float] = mapped_column(sa.Double)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerValue(Base):
    """A customer's inputs and predictions in one run. Purchases are counted per UTC day: several
    orders on one day are one purchase of their summed value."""

    __tablename__ = "customer_values"

    run_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("customer_value_runs.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    frequency: Mapped[int] = mapped_column(sa.Integer)  # repeat purchase days (after the first)
    recency_days: Mapped[int] = mapped_column(sa.Integer)  # first to last purchase day
    age_days: Mapped[int] = mapped_column(sa.Integer)  # first purchase day to the run's as-of day
    average_spend: Mapped[Decimal | None] = mapped_column(AmountType)  # mean of repeat days; null without
    expected_spend: Mapped[Decimal] = mapped_column(AmountType)  # per future purchase (Gamma-Gamma)
    probability_alive: Mapped[float] = mapped_column(sa.Double)
    expected_purchases: Mapped[float] = mapped_column(sa.Double)  # over the run's horizon
    clv: Mapped[Decimal] = mapped_column(AmountType)  # over the run's horizon, discounted

    __table_args__ = (
        sa.Index("ix_customer_values_run_alive", "run_id", "probability_alive"),
        sa.Index("ix_customer_values_run_clv", "run_id", "clv"),
    )


class ChurnRisk(Base):
    """A customer who is, or was, a churn risk: their recency and frequency scores fell between
    the two latest comparable RFM runs and their probability alive is low (docs/insights.md).

    One row per customer: ``cleared_at`` is null while they are at risk. A customer who becomes
    a risk again after being cleared gets a new ``raised_at`` (and a new event); the figures are
    those of the newest assessment that found them at risk.
    """

    __tablename__ = "churn_risks"

    customer_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The RFM runs compared (by id; runs are kept) and the customer-value run read.
    rfm_run_id: Mapped[int] = mapped_column(IdType)
    previous_rfm_run_id: Mapped[int] = mapped_column(IdType)
    value_run_id: Mapped[int] = mapped_column(IdType)
    as_of: Mapped[date] = mapped_column(sa.Date)  # the newer RFM run's
    previous_as_of: Mapped[date] = mapped_column(sa.Date)
    currency: Mapped[str] = mapped_column(sa.String(3))  # of the RFM runs' monetary value
    recency_score_before: Mapped[int] = mapped_column(sa.SmallInteger)
    recency_score: Mapped[int] = mapped_column(sa.SmallInteger)
    frequency_score_before: Mapped[int] = mapped_column(sa.SmallInteger)
    frequency_score: Mapped[int] = mapped_column(sa.SmallInteger)
    recency_days: Mapped[int] = mapped_column(sa.Integer)
    monetary: Mapped[Decimal] = mapped_column(AmountType)  # revenue in the newer run's window: the rank
    probability_alive: Mapped[float] = mapped_column(sa.Double)
    clv: Mapped[Decimal] = mapped_column(AmountType)
    clv_currency: Mapped[str] = mapped_column(sa.String(3))

    __table_args__ = (sa.Index("ix_churn_risks_open_rank", "cleared_at", "monetary", "customer_id"),)


class LifecycleChangeSource(enum.Enum):
    RUN = "RUN"  # a lifecycle run computed another stage
    PIN = "PIN"  # someone pinned a stage by hand
    UNPIN = "UNPIN"  # a pin was lifted: back to the computed stage


class LifecycleRun(IdMixin, Base):
    """One computation of every customer's lifecycle stage as of a day, with the thresholds used."""

    __tablename__ = "lifecycle_runs"

    as_of: Mapped[date] = mapped_column(sa.Date)
    window_days: Mapped[int] = mapped_column(sa.Integer)
    churned_after_days: Mapped[int] = mapped_column(sa.Integer)
    trial_orders: Mapped[int] = mapped_column(sa.Integer)
    growth_ratio: Mapped[float] = mapped_column(sa.Double)
    decline_ratio: Mapped[float] = mapped_column(sa.Double)
    customer_count: Mapped[int] = mapped_column(sa.Integer)
    changed: Mapped[int] = mapped_column(sa.Integer)  # customers whose stage changed with this run
    # Over every customer (the job, an administrator), or only those its caller may change.
    complete: Mapped[bool] = mapped_column(sa.Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerLifecycle(Base):
    """A customer's order volume and computed stage in one lifecycle run (their main currency)."""

    __tablename__ = "customer_lifecycles"

    run_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("lifecycle_runs.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    stage: Mapped[LifecycleStage] = mapped_column(enum_column(LifecycleStage))
    currency: Mapped[str] = mapped_column(sa.String(3))
    orders: Mapped[int] = mapped_column(sa.Integer)  # counted orders up to the run's as-of day
    volume: Mapped[Decimal] = mapped_column(AmountType)  # in the latest window
    previous_volume: Mapped[Decimal] = mapped_column(AmountType)  # in the window before it
    days_since_last_order: Mapped[int] = mapped_column(sa.Integer)


class CustomerLifecycleState(Base):
    """What the lifecycle runs and pins know of a customer. The stage itself is the customer's
    own ``lifecycle_stage`` column (``Customer.lifecycleStage``): runs set it unless it is pinned."""

    __tablename__ = "customer_lifecycle_states"

    customer_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    computed_stage: Mapped[LifecycleStage | None] = mapped_column(enum_column(LifecycleStage))
    run_id: Mapped[int | None] = mapped_column(IdType)  # the newest run that covered the customer
    since: Mapped[datetime] = mapped_column(UTCDateTime)  # when the stage was last changed by a run or a pin
    pinned: Mapped[bool] = mapped_column(sa.Boolean)
    pinned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pinned_by: Mapped[str | None] = mapped_column(sa.String(200))
    pin_note: Mapped[str | None] = mapped_column(sa.String(500))


class LifecycleStageChange(IdMixin, Base):
    """One change of a customer's stage: by a run, a pin or an unpin."""

    __tablename__ = "lifecycle_stage_changes"

    customer_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("customers.id", ondelete="CASCADE"))
    from_stage: Mapped[LifecycleStage | None] = mapped_column(enum_column(LifecycleStage))
    to_stage: Mapped[LifecycleStage | None] = mapped_column(enum_column(LifecycleStage))
    source: Mapped[LifecycleChangeSource] = mapped_column(enum_column(LifecycleChangeSource))
    run_id: Mapped[int | None] = mapped_column(IdType)
    actor: Mapped[str] = mapped_column(sa.String(200))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index("ix_lifecycle_stage_changes_customer", "customer_id", "changed_at", "id"),)


class AssociationRun(IdMixin, Base):
    """One computation of product association rules over the customers' purchases in a window."""

    __tablename__ = "product_association_runs"

    as_of: Mapped[date] = mapped_column(sa.Date)
    window_days: Mapped[int] = mapped_column(sa.Integer)
    customers: Mapped[int] = mapped_column(sa.Integer)  # customers who bought a product in the window: N
    min_support_count: Mapped[int] = mapped_column(sa.Integer)
    min_confidence: Mapped[float] = mapped_column(sa.Double)
    min_lift: Mapped[float] = mapped_column(sa.Double)
    rule_count: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProductAssociation(Base):
    """A rule "buyers of the antecedent also buy the consequent" in one run. Counts are of
    customers: ``both`` bought the two, ``antecedent_count`` / ``consequent_count`` each one."""

    __tablename__ = "product_associations"

    run_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("product_association_runs.id", ondelete="CASCADE"), primary_key=True
    )
    antecedent_id: Mapped[int] = mapped_column(IdType, sa.ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    consequent_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("products.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    both: Mapped[int] = mapped_column(sa.Integer)
    antecedent_count: Mapped[int] = mapped_column(sa.Integer)
    consequent_count: Mapped[int] = mapped_column(sa.Integer)
    support: Mapped[float] = mapped_column(sa.Double)  # both / N
    confidence: Mapped[float] = mapped_column(sa.Double)  # both / antecedent_count
    lift: Mapped[float] = mapped_column(sa.Double)  # confidence / (consequent_count / N)


guard_object(CustomerValueRun, "insights")
# A customer's figures are the customer's: hidden customer, hidden figures.
guard_child(CustomerValue, "insights", Customer, "customer_id")
guard_child(ChurnRisk, "insights", Customer, "customer_id")
guard_object(LifecycleRun, "insights")
guard_object(AssociationRun, "insights")
guard_object(ProductAssociation, "insights")
guard_child(CustomerLifecycle, "insights", Customer, "customer_id")
guard_child(CustomerLifecycleState, "insights", Customer, "customer_id")
guard_child(LifecycleStageChange, "insights", Customer, "customer_id")
