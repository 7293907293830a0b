"""A GB18030 CSV as Chinese Excel writes it: organizations with contacts, products, historic orders."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from crm_graph.customers.models import Customer, CustomerKind, CustomerPhone
from crm_graph.sales.models import Order, OrderExternalRef, OrderLineItem, Product
from tests.imports.helpers import run

ORGS = (
    "编号,公司名称,城市,国家,联系人,联系人电话,联系人邮箱\r\n"
    "ORG-1,华为技术有限公司,深圳,CN,张伟,13800138000,zhangwei@huawei.example\r\n"
    "ORG-1,华为技术有限公司,深圳,CN,欧阳娜娜,13900139000,nana@huawei.example\r\n"
    "ORG-2,阿里巴巴集团,杭州,CN,李娜,0571 8502 2088,lina@alibaba.example\r\n"
    "ORG-3,,北京,CN,王芳,13700137000,wangfang@example.cn\r\n"
    "ORG-4,小米科技,北京,CN,刘洋,12345,liuyang@xiaomi.example\r\n"
)
ORG_MAPPING = {"columns": [
    {"source": "编号", "target": "externalId"}, {"source": "公司名称", "target": "name"}, {"source": "城市", "target": "city"},
    {"source": "国家", "target": "country"}, {"source": "联系人", "target": "contactFullName"},
    {"source": "联系人电话", "target": "contactPhone"}, {"source": "联系人邮箱", "target": "contactEmail"},
]}
CUSTOMERS = "客户编号;姓名;邮箱;城市\r\nK1;陈静;chenjing@example.cn;上海\r\nK2;杨磊;yanglei@example.cn;广州\r\n"
PRODUCTS = "SKU\t名称\t单价\t标签\r\nTEA-1\t龙井茶\t128.00\t茶;礼品\r\nCUP-2\t青花瓷杯\t45.5\t瓷器\r\n"
ORDERS = (
    "订单号,客户编号,客户邮箱,日期,SKU,数量,单价\r\n"
    "SO-1,K1,,2025/03/01,TEA-1,2,\r\n"
    "SO-1,K1,,2025/03/01,CUP-2,4,40\r\n"
    "SO-2,,yanglei@example.cn,01.04.2025,TEA-1,1,\r\n"
    "SO-3,K9,,2025-05-01,TEA-1,1,\r\n"
    "SO-4,K2,,2025-05-02,NOPE-1,1,\r\n"
)
ORDER_MAPPING = {"columns": [
    {"source": "订单号", "target": "externalId"}, {"source": "客户编号", "target": "customerExternalId"},
    {"source": "客户邮箱", "target": "customerEmail"}, {"source": "日期", "target": "orderedAt"},
    {"source": "SKU", "target": "sku"}, {"source": "数量", "target": "quantity"}, {"source": "单价", "target": "unitPrice"}],
    "options": {"currency": "CNY"}}


async def test_gb18030_organizations_contacts_products_and_orders(client, db) -> None:
    job = await run(client, entity="ORGANIZATION", content=ORGS.encode("gb18030"), fileName="客户.csv",
                    mapping=ORG_MAPPING, mode="UPSERT", key="EXTERNAL_REF")
    assert (job["rowsTotal"], job["rowsCreated"], job["rowsUpdated"], job["rowsFailed"]) == (5, 2, 1, 2)
    assert {(e["row"], e["field"], e["code"]) for e in job["errors"]} == {(5, "name", "REQUIRED"), (6, "contactPhone", "INVALID_PHONE")}
    async with db.reader() as session:
        huawei = await session.scalar(sa.select(Customer).where(Customer.external_id == "ORG-1"))
        contacts = {c.display_name: c for c in await session.scalars(sa.select(Customer).where(Customer.kind == CustomerKind.PERSON))}
        phone = await session.scalar(sa.select(CustomerPhone.number).where(CustomerPhone.customer_id == huawei.id + 1))
    assert (huawei.organization_name, huawei.city, huawei.kind) == ("华为技术有限公司", "深圳", CustomerKind.ORGANIZATION)
    by_last = {(c.last_name, c.first_name): c for c in contacts.values()}
    assert set(by_last) == {("张", "伟"), ("欧阳", "娜娜"), ("李", "娜")}
    assert by_last[("张", "伟")].organization_id == huawei.id == by_last[("欧阳", "娜娜")].organization_id
    async with db.reader() as session:
        phone = await session.scalar(sa.select(CustomerPhone.number).where(CustomerPhone.customer_id == by_last[("张", "伟")].id))
    assert phone == "+8613800138000"  # the row's country gave the region

    again = await run(client, entity="ORGANIZATION", content=ORGS.encode("gb18030"), mapping=ORG_MAPPING, key="EXTERNAL_REF")
    assert (again["rowsCreated"], again["rowsUpdated"], again["rowsUnchanged"]) == (0, 0, 3)
    async with db.reader() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 2 + 3

    await run(client, entity="CUSTOMER", content=CUSTOMERS.encode("gbk"), key="EXTERNAL_REF", mapping={"columns": [
        {"source": "客户编号", "target": "externalId"}, {"source": "姓名", "target": "fullName"},
        {"source": "邮箱", "target": "email"}, {"source": "城市", "target": "city"}]})
    job = await run(client, entity="PRODUCT", content=PRODUCTS.encode("gb18030"), key="SKU", mapping={"columns": [
        {"source": "SKU", "target": "sku"}, {"source": "名称", "target": "name"}, {"source": "单价", "target": "unitPrice"},
        {"source": "标签", "target": "tags", "separator": ";"}], "options": {"currency": "CNY"}})
    assert job["rowsCreated"] == 2
    job = await run(client, entity="ORDER", content=ORDERS.encode("gb18030"), key="EXTERNAL_REF", mapping=ORDER_MAPPING)
    assert (job["rowsCreated"], job["rowsFailed"]) == (3, 2)
    assert {(e["row"], e["field"], e["code"]) for e in job["errors"]} == {(5, "customerExternalId", "NOT_FOUND"), (6, "sku", "NOT_FOUND")}
    async with db.reader() as session:
        orders = {ref: o for ref, o in (await session.execute(
            sa.select(OrderExternalRef.external_id, Order).join(Order, Order.id == OrderExternalRef.order_id))).all()}
        lines = list(await session.scalars(sa.select(OrderLineItem).where(OrderLineItem.order_id == orders["SO-1"].id)
                                           .order_by(OrderLineItem.position)))
        chen = await session.scalar(sa.select(Customer).where(Customer.external_id == "K1"))
        yang = await session.scalar(sa.select(Customer).where(Customer.external_id == "K2"))
        tea = await session.scalar(sa.select(Product).where(Product.sku == "TEA-1"))
    assert (chen.last_name, chen.first_name, chen.city) == ("陈", "静", "上海")
    assert set(orders) == {"SO-1", "SO-2"}
    assert orders["SO-1"].customer_id == chen.id and orders["SO-2"].customer_id == yang.id
    assert orders["SO-1"].total == Decimal("416.00") and orders["SO-1"].currency == "CNY"
    assert orders["SO-1"].ordered_at.date().isoformat() == "2025-03-01" and orders["SO-2"].ordered_at.date().isoformat() == "2025-04-01"
    assert (lines[0].product_id, lines[0].quantity, lines[0].unit_price, lines[0].description) == (tea.id, Decimal(2), Decimal("128.00"), "龙井茶")
    assert lines[1].unit_price == Decimal(40)
    again = await run(client, entity="ORDER", content=ORDERS.encode("gb18030"), key="EXTERNAL_REF", mapping=ORDER_MAPPING)
    assert (again["rowsCreated"], again["rowsUpdated"], again["rowsUnchanged"]) == (0, 0, 3)
