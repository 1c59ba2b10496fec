"""Transactions: search the journal; one transaction's timeline, codes, payment and receipt."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from agent.journal import JournalReader, Kind, TxnRecord, TxnState
from agent.journal.store import JournalError
from agent.web.context import WebContext, ctx_of
from agent.web.facts import TxnDetail, TxnRow, attention_now, txn_detail, txn_row
from agent.web.html import Html, action_form, card, h, join, page, pairs, pill, table, tag, when
from agent.web.params import BadInput, Params

PAGE_SIZE = 50
MAX_PAGE = 10_000
TXN_PATTERN = r"[A-Za-z0-9_-]{1,40}"
LANE_PATTERN = r"[A-Za-z0-9_.-]{1,32}"
SEARCH_PARAMS = ("txn", "date", "lane", "status", "kind", "page")


@dataclass(frozen=True, slots=True)
class Search:
    txn: str
    date: str
    day: tuple[float, float] | None
    lane: str
    status: str
    kind: str
    page: int

    def query(self, **change: object) -> str:
        values = {"txn": self.txn, "date": self.date, "lane": self.lane,
                  "status": self.status, "kind": self.kind, "page": str(self.page)}
        values.update({k: str(v) for k, v in change.items()})
        if values["page"] == "1":
            del values["page"]
        return urlencode({k: v for k, v in values.items() if v})


def parse_search(params: Params) -> Search:
    txn = params.text("txn", pattern=TXN_PATTERN, max_len=40,
                      what="letters, digits, _ and - only")
    return Search(
        txn=txn, date=params.raw("date").strip(), day=params.day("date"),
        lane=params.text("lane", pattern=LANE_PATTERN, max_len=32, what="not a lane name"),
        status=params.choice("status", [s.value for s in TxnState]),
        kind=params.choice("kind", [k.value for k in Kind]),
        page=params.integer("page", low=1, high=MAX_PAGE, default=1))


def run_search(journal: JournalReader, search: Search) -> tuple[list[TxnRow], bool]:
    """One page of results, newest first, and whether there are more."""
    since, until = search.day if search.day else (None, None)
    records = journal.search(txn=search.txn or None, lane=search.lane or None,
                             state=search.status or None, kind=search.kind or None,
                             since=since, until=until, limit=PAGE_SIZE + 1,
                             offset=(search.page - 1) * PAGE_SIZE)
    return [txn_row(r) for r in records[:PAGE_SIZE]], len(records) > PAGE_SIZE


async def transactions_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    search = parse_search(Params(request.query, SEARCH_PARAMS))
    rows, more = await ctx.page_reader().run(lambda j: run_search(j, search))
    body = search_form(ctx, search) + results(rows, search, more)
    return page(ctx, request, title="Transactions", active="transactions", body=body,
                attention=attention_now(ctx.agent))


def search_form(ctx: WebContext, search: Search) -> Html:
    lanes = [lane.name for lane in ctx.agent.config.lanes]
    if search.lane and search.lane not in lanes:
        lanes.append(search.lane)

    def select(name: str, label: str, options: list[str], current: str) -> Html:
        opts = tag("option", "any", value="") + join(
            tag("option", o, value=o, selected=o == current or None) for o in options)
        return tag("label", Html(f"{h(label)} ") + tag("select", opts, name=name))

    fields = (
        tag("label", Html("Transaction id ") + tag(
            "input", type="search", name="txn", value=search.txn, maxlength="40",
            pattern="[A-Za-z0-9_\\-]*", placeholder="e.g. INV000123")),
        tag("label", Html("Date (IST) ") + tag("input", type="date", name="date",
                                               value=search.date)),
        select("lane", "Lane", lanes, search.lane),
        select("status", "Status", [s.value for s in TxnState], search.status),
        select("kind", "Kind", [k.value for k in Kind], search.kind),
        tag("button", "Search", type="submit"),
        tag("a", "Clear", href="/transactions", class_="button secondary"),
    )
    return tag("form", join(fields), method="get", action="/transactions", class_="search",
               role="search")


def results(rows: list[TxnRow], search: Search, more: bool) -> Html:
    table_rows = [[when(r.created_at), tag("a", r.txn, href=f"/transactions/{r.row}"),
                   r.kind, r.lane, r.tid, tag("span", r.amount_text, class_="num"),
                   pill(r.state), r.code, r.message] for r in rows]
    body = table(["Time (IST)", "Transaction", "Kind", "Lane", "Terminal", "Amount", "Status",
                  "Code", "Message"], table_rows, class_="txns",
                 empty="No transactions match.")
    links = []
    if search.page > 1:
        links.append(tag("a", "← Newer", href="/transactions?" + search.query(
            page=search.page - 1)))
    if more:
        links.append(tag("a", "Older →", href="/transactions?" + search.query(
            page=search.page + 1)))
    if links:
        body += tag("p", join(links, " · "), class_="pager")
    return tag("div", body, id="txns-live", data_live=True)


# -- detail ----------------------------------------------------------------------------


def record_for(request: web.Request) -> TxnRecord:
    ctx = ctx_of(request)
    text = request.match_info["row"]
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise BadInput(f"no transaction {text[:40]!r}", 404)
    try:
        return ctx.agent.journal.get(int(text))
    except JournalError:
        raise BadInput(f"no transaction with row {text}", 404) from None


async def transaction_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    Params(request.query, ())
    record = record_for(request)
    detail = txn_detail(ctx.agent, record)
    body = render_detail(ctx, request, detail)
    return page(ctx, request, title=f"{record.kind.value.capitalize()} {record.txn}",
                active="transactions", body=body, attention=attention_now(ctx.agent))


def render_detail(ctx: WebContext, request: web.Request, d: TxnDetail) -> Html:
    t = d.txn
    session = ctx.session(request)
    summary = pairs([
        ("Status", pill(t.state) + (tag("span", " (never reached Paytm)", class_="muted")
                                    if d.not_sent else Html(""))),
        ("Transaction id", tag("code", t.txn)),
        ("Kind", t.kind),
        ("Amount", Html(f"{h(t.amount_text)} ") + tag("span", f"({t.amount} paise)",
                                                      class_="muted")),
        ("Lane / terminal", f"{t.lane} / {t.tid or '—'}"),
        *([("Since then", tag("strong", d.later, class_="warn"))] if d.later else []),
        *([("Original transaction", _txn_link(d.original) if d.original is not None
            else tag("code", t.parent))] if t.parent else []),
        *([("Void and refunds", join([_txn_link(r) for r in d.related], ", "))]
          if d.related else []),
        ("Paytm code", t.code or "—"),
        ("Message", t.message or "—"),
        ("Received", when(t.created_at)),
        ("Sent to Paytm", when(d.sent_at)),
        ("Last change", when(t.updated_at)),
        ("Paytm transaction time", d.txn_time or "—"),
    ])
    actions = Html("")
    if d.can_recheck:
        actions += action_form(session, "/tools/recheck", "Ask Paytm now (re-check)",
                               [("row", str(t.row))], enabled=ctx.actions_enabled)
    for outbox_id in d.undelivered:
        actions += action_form(session, "/tools/resend", f"Resend result {outbox_id}",
                               [("outbox", str(outbox_id))], enabled=ctx.actions_enabled)
    if actions:
        summary += tag("div", actions, class_="actions")

    events = table(["Time (IST)", "State", "Code", "Detail"],
                   [[when(e.at), pill(e.state), e.code, e.detail] for e in d.events],
                   empty="No events.")
    codes = table(["Code", "Paytm's name", "Meaning"],
                  [[c.code, c.name, c.meaning] for c in d.codes],
                  empty="Paytm has not sent a code for this transaction.")
    payment = pairs(sorted((k, str(v)) for k, v in d.payment.items())) if d.payment else \
        tag("p", "No payment details from Paytm.", class_="muted")
    receipt = tag("pre", "\n".join(d.receipt), class_="receipt") if d.receipt else \
        tag("p", "No result has been sent to the register yet.", class_="muted")
    deliveries = table(
        ["Result", "Status", "Created", "Delivered (ACK)"],
        [[str(o.id), pill(o.status), when(o.created_at),
          when(o.delivered_at) if o.delivered_at is not None else
          tag("span", "superseded by a newer result" if o.superseded else "not yet",
              class_="muted" if o.superseded else "bad")] for o in d.outbox],
        empty="No result for the register yet.")
    sections = [
        card("Summary", summary),
        card("Timeline", events),
        card("Paytm codes", codes),
        card("Payment (as Paytm sent it)", payment),
        card("Receipt as the register received it", receipt),
        card("Results for the register", deliveries),
        card("Reply as sent to the register", _json_block(d.reply)),
        card("Request from the register", _json_block(d.request)),
    ]
    return tag("div", join(sections), id="txn-live", data_live=True, class_="detail")


def _txn_link(row: TxnRow) -> Html:
    return tag("a", Html(f"{h(row.kind)} {h(row.txn)} ") + pill(row.state),
               href=f"/transactions/{row.row}")


def _json_block(value: dict[str, object]) -> Html:
    if not value:
        return tag("p", "—", class_="muted")
    return tag("pre", json.dumps(value, indent=2, ensure_ascii=False), class_="json")
