"""`hotwash incident diagnose ...`: the category's diagnostic questions, pre-filled with evidence."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from hotwash.commands.common import ActorOpt, JsonOpt, actor, out, print_json, settings, store
from hotwash.incidents import diagnose
from hotwash.incidents.service import parse_ref
from hotwash.manifest import load_manifest

IncidentArg = Annotated[str, typer.Argument(help="The incident, e.g. INC-3.")]
# Evidence keys listed by id on the console; the rest is in --json.
_ID_KEYS = (("events", "events"), ("changes", "changes"))


def _evidence_line(evidence: dict[str, Any] | None) -> str:
    if not evidence:
        return ""
    parts = [f"{label}: {', '.join(str(i) for i in evidence[key][:6])}"
             for key, label in _ID_KEYS if evidence.get(key)]
    return " · ".join(parts)


def _show(ref: str, category: str | None, answers: list[dict[str, Any]]) -> None:
    head = f"[bold]{escape(ref)}[/] diagnosis" + (f" ({category})" if category else "")
    out.print(head, highlight=False)
    for i, a in enumerate(answers, 1):
        out.print(f"\n[bold]{i}. {escape(a['prompt'])}[/] [dim]({a['question']})[/]", highlight=False)
        if a["answer"] is None:
            out.print("   [yellow]unanswered[/]: the telemetry cannot answer this; "
                      f"`hotwash incident answer {escape(ref)} {a['question']} TEXT`", highlight=False)
            continue
        # Answers quote telemetry (attacker-controlled text): always escaped.
        out.print(f"   {escape(a['answer'])}", highlight=False)
        by = "auto, from telemetry" if a["source"] == "auto" else f"by {escape(a['updated_by'] or '?')}"
        line = _evidence_line(a["evidence"])
        out.print(f"   [dim]{by} · {a['updated_at']:%Y-%m-%d %H:%M}Z"
                  + (f" · {escape(line)}" if line else "") + "[/]", highlight=False)
    out.print("\n[dim]all evidence: --json[/]", highlight=False)


def register(incident_app: typer.Typer) -> None:
    """Add the diagnosis commands to the `incident` group."""

    @incident_app.command("diagnose")
    def diagnose_(
        incident: IncidentArg,
        refresh: Annotated[bool, typer.Option("--refresh", help="Recompute the answers from telemetry "
                                              "(answers a person wrote are kept).")] = False,
        json_: JsonOpt = False,
    ) -> None:
        """Show the incident's diagnostic questions with the answers and their evidence."""
        cfg = settings()
        st = store(cfg)
        number = parse_ref(incident)
        if refresh:
            answers = diagnose.prefill(st, load_manifest(cfg.manifest), number)
        else:
            answers = diagnose.get_answers(st, number)
        if json_:
            print_json({"incident": f"INC-{number}", "diagnosis": answers})
            return
        category = st.diagnosis_incident(number)["category"]
        _show(f"INC-{number}", category, answers)

    @incident_app.command("answer")
    def answer_(
        incident: IncidentArg,
        question: Annotated[str, typer.Argument(help="The question's key, as `diagnose` shows it.")],
        text: Annotated[str, typer.Argument(help="Your answer; kept when the answers are refreshed.")],
        actor_: ActorOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Answer (or correct) one diagnostic question; the answer lands on the timeline."""
        st = store(settings())
        number = parse_ref(incident)
        saved = diagnose.answer(st, number, question, text, actor=actor(actor_))
        if json_:
            print_json(saved)
            return
        out.print(f"INC-{number} [bold]{escape(saved['prompt'])}[/] answered by {escape(saved['updated_by'])}",
                  highlight=False)

