"""The section "Claims", at the top of the report: each claim of the paper with its verdict under every protocol,
judged from every seed (:func:`dlgmm_core.report.analysis.judge_claims`), and each published MNIST number against
our seeds."""
from __future__ import annotations

from typing import Mapping, Sequence

from scipy import stats

from ..claims import CLAIMS, DIVISION_MARGIN_PX, NO_GAIN_MARGIN_NATS, Claim, Division, Judgement, PaperClaim
from ..verdicts import CONFIDENCE, Verdict
from .analysis import VERDICT_NUMBERS, Fidelity, Judged, paper_difference
from .inputs import Inputs
from .paper import DATASET_NAMES, name
from .tables import MISSING, fixed, markdown_table, seed_list, signed
from .templates import paragraphs, phrase


def verdict_word(verdict: Verdict | None) -> str:
    """``supported`` / ``contradicted`` / ``inconclusive``, or ``not run yet`` for None."""
    if verdict is None:
        return phrase("verdict.not_run")
    return {Verdict.SUPPORTED: phrase("verdict.supported"), Verdict.CONTRADICTED: phrase("verdict.contradicted"),
            Verdict.INCONCLUSIVE: phrase("verdict.inconclusive")}[verdict]


def seeds_text(count: int, total: int) -> str:
    """``3 of 3 seeds``."""
    return phrase("claims.seeds", count=count, total=total)


def _verdict_text(verdict: Verdict | None, count: int, total: int, bold: bool = False) -> str:
    """``supported, 3 of 3 seeds`` (the verdict's word in bold with ``bold``), or ``not run yet`` for None."""
    if verdict is None:
        return verdict_word(None)
    word = verdict_word(verdict)
    return phrase("claims.verdict", verdict=f"**{word}**" if bold else word, seeds=seeds_text(count, total))


def claim_verdict(judged: Judged, total: int) -> str:
    """A claim's verdict with the number of seeds it rests on (``supported, 3 of 3 seeds``), or ``not run yet``:
    what the report's other sections say where they point to the Claims section."""
    return _verdict_text(judged.verdict, len(judged.seeds), total)


def _range(values: tuple[float, ...] | list[float], form=signed) -> str:
    return phrase("claims.range", low=form(min(values)), high=form(max(values))) if len(values) > 1 else ""


def _case_cell(judgement: Judgement, total: int) -> str:
    interval = judgement.interval
    if interval is None:
        return verdict_word(None)
    return phrase("claims.cell", verdict=verdict_word(judgement.verdict), estimate=signed(interval.mean),
                  range=_range(interval.per_seed), low=signed(interval.low), high=signed(interval.high),
                  seeds=seeds_text(interval.seeds, total))


def _label(case: Claim, marker: str) -> str:
    models = {"better": name(case.better), "than": name(case.than)}
    text = phrase("claims.better", **models) if case.form == "better" else phrase("claims.no_gain", **models)
    return text + marker


def _measure(case: Claim) -> str:
    dataset = DATASET_NAMES[case.dataset]
    if case.measure == "nll":
        note = phrase("claims.omniglot") if case.dataset == "omniglot" else ""
        return phrase("claims.measure.nll", dataset=dataset, note=note)
    if case.measure == "knn":
        return phrase("claims.measure.knn", dataset=dataset, k=case.neighbors)
    if case.measure == "map":
        return phrase("claims.measure.map", dataset=dataset)
    return phrase("claims.measure.latent", dataset=dataset)


def _paper(case: Claim) -> str:
    difference = paper_difference(case)
    return MISSING if difference is None else signed(difference)


def _every_k_measure(claim: PaperClaim) -> str:
    """The measure of a claim made at several k: ``MNIST kNN error at every k = 3, 5, 10``."""
    ks = ", ".join(str(case.neighbors) for case in claim.cases)
    return phrase("claims.measure.every_k", dataset=DATASET_NAMES[claim.cases[0].dataset], ks=ks)


def _paired_rows(claim: PaperClaim, judged: dict[str, Judged], marker: str, total: int) -> list[list[str]]:
    if len(claim.cases) == 1:
        case = claim.cases[0]
        return [[_label(case, marker), _measure(case), _paper(case)]
                + [_case_cell(entry.judgements[0], total) for entry in judged.values()]]
    first = claim.cases[0]
    rows = [[_label(first, marker), _every_k_measure(claim), MISSING]
            + [claim_verdict(entry, total) for entry in judged.values()]]
    for index, case in enumerate(claim.cases):
        rows.append([phrase("claims.case", k=case.neighbors), _measure(case), _paper(case)]
                    + [_case_cell(entry.judgements[index], total) for entry in judged.values()])
    return rows


def orientation_text(orientation: int, last: int) -> str:
    """A seed's orientation of the division (:class:`dlgmm_core.claims.Division`) in words."""
    if orientation > 0:
        return phrase("claims.orientation.paper", last=last)
    return phrase("claims.orientation.reversed") if orientation < 0 else phrase("claims.orientation.none")


def division_slots(row: Division, last: int) -> dict[str, str]:
    """One seed's division (:class:`dlgmm_core.claims.Division`) as the slots every phrase of it fills: the gap and
    its interval's ends (px, signed, one decimal) and the orientation in words (``last``: the last component)."""
    return {"gap": signed(row.gap, 1), "low": signed(row.low, 1), "high": signed(row.high, 1),
            "orientation": orientation_text(row.orientation, last)}


def _division_cell(judged: Judged, total: int, last: int) -> str:
    if judged.verdict is None:
        return verdict_word(None)
    seeds = "; ".join(phrase("claims.division.seed", seed=row.seed, **division_slots(row, last))
                      for row in judged.divisions)
    return phrase("claims.division.cell", verdict=verdict_word(judged.verdict), seeds=seeds,
                  count=seeds_text(len(judged.seeds), total))


def _fidelity_cell(cell: Fidelity, total: int) -> str:
    if cell.spread is None:
        return verdict_word(None)
    values = list(cell.per_seed.values())
    interval = (phrase("claims.prediction", low=fixed(cell.spread.low), high=fixed(cell.spread.high))
                if len(values) > 1 else phrase("claims.no_spread"))
    return phrase("claims.fidelity.cell", verdict=verdict_word(cell.verdict), mean=fixed(cell.spread.mean),
                  range=_range(values, fixed), interval=interval, seeds=seeds_text(len(values), total))


def _fidelity_label(cell: Fidelity) -> str:
    if cell.metric == "nll":
        return phrase("claims.fidelity.nll", model=name(cell.model))
    return phrase("claims.fidelity.knn", model=name(cell.model), k=cell.metric.split("@", 1)[1])


def claims_section(inputs: Inputs, judged: dict[str, dict[str, Judged]], components: int) -> str:
    """The section's body: the claims' table with the paper's words below it, then the published MNIST numbers
    against our seeds (``judged``: :func:`dlgmm_core.report.analysis.judge_claims`; ``components``: the
    qualitative model's)."""
    total, protocols = len(inputs.seeds), list(inputs.protocols)
    quotes: dict[str, int] = {}
    rows: list[list[str]] = []
    fidelity = ""
    for claim in CLAIMS:
        if claim.kind == "fidelity":
            cells = zip(*(entry.fidelity for entry in judged[claim.key].values()))
            table = markdown_table(["number", "paper"] + [f"`{p}`" for p in protocols],
                                   [[_fidelity_label(per[0]), fixed(per[0].published)]
                                    + [_fidelity_cell(cell, total) for cell in per] for per in cells])
            fidelity = phrase("claims.fidelity", quote=claim.quote, confidence=f"{100 * CONFIDENCE:g}", table=table)
            continue
        number = quotes.setdefault(claim.quote, len(quotes) + 1)
        marker = phrase("claims.marker", number=number)
        if claim.kind == "division":
            rows.append([phrase("claims.division", last=components, marker=marker), phrase("claims.measure.division", last=components),
                         phrase("claims.division.paper", last=components)]
                        + [_division_cell(entry, total, components) for entry in judged[claim.key].values()])
        else:
            rows += _paired_rows(claim, judged[claim.key], marker, total)
    table = markdown_table(["claim", "measure", "paper"] + [f"`{p}`" for p in protocols], rows)
    quoted = "\n".join(phrase("claims.quote", number=n, quote=q) for q, n in quotes.items())
    return paragraphs(phrase("claims", seeds=seed_list(inputs.seeds),
                             confidence=f"{100 * CONFIDENCE:g}", margin=f"{NO_GAIN_MARGIN_NATS:g}",
                             t_three=f"{stats.t.ppf(0.5 + CONFIDENCE / 2, 2):.2f}",
                             t_many=f"{stats.norm.ppf(0.5 + CONFIDENCE / 2):.2f}", table=table, quotes=quoted),
                      phrase("claims.division.about", last=components, margin=f"{DIVISION_MARGIN_PX:g}",
                             confidence=f"{100 * CONFIDENCE:g}"),
                      fidelity)


def claims_digest(metrics: Mapping[str, float], protocols: Sequence[str], total: int, components: int) -> str:
    """README.md's digest of the section "Claims": each claim of the paper (the published numbers left out) with its
    verdict under each of ``protocols`` and the number of the ``total`` seeds it rests on, read back from the
    report's flat metrics (``claims.<claim>.<protocol>.verdict`` and ``.seeds``, :func:`.analysis.flat_metrics`);
    ``not run yet`` where a protocol has no verdict."""
    verdicts = {number: verdict for verdict, number in VERDICT_NUMBERS.items()}

    def cell(key: str, protocol: str) -> str:
        prefix = f"claims.{key}.{protocol}"
        if f"{prefix}.verdict" not in metrics:
            return verdict_word(None)
        return _verdict_text(verdicts[int(metrics[f"{prefix}.verdict"])], int(metrics[f"{prefix}.seeds"]), total,
                             bold=True)

    rows = []
    for claim in CLAIMS:
        if claim.kind == "fidelity":
            continue
        if claim.kind == "division":
            label = phrase("claims.division", last=components, marker="")
            measure = phrase("claims.measure.division", last=components)
        else:
            first = claim.cases[0]
            label = _label(first, "")
            measure = _measure(first) if len(claim.cases) == 1 else _every_k_measure(claim)
        rows.append([label, measure] + [cell(claim.key, p) for p in protocols])
    return markdown_table(["claim", "measure"] + [f"`{p}`" for p in protocols], rows)


def readme_claims_digest(metrics: Mapping[str, float], tree: Mapping) -> str:
    """:func:`claims_digest` for params.yaml's ``tree`` (its protocols, the number of its seeds and the qualitative
    model's components): the table README.md holds, printed by ``python tools/results.py --claims``."""
    return claims_digest(metrics, list(tree["protocols"]), len(tree["seeds"]),
                         int(tree["model"]["qualitative"]["components"]))
