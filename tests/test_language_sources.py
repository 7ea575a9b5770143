"""kdlab.language_sources: the toy, sampling, the three sources of text, and the paired comparisons (notebook 12).

Tiny models on a tiny text, a few steps each: what is tested is the plumbing (shapes, seeds, pairing, caching,
errors), not what distillation achieves, which notebook 12 measures.
"""

import json
import math

import pytest
import torch

from kdlab import language_sources
from kdlab.comparison import PairedDifference
from kdlab.interrupt import TrainingInterrupted
from kdlab.language_sources import (
    compare_divergences,
    compare_sources,
    continue_text,
    distill_on_source,
    evaluate_student,
    evaluation_windows,
    fit_one_mode,
    gaussian_on_grid,
    known_word_share,
    load_or_sample_teacher_text,
    mixed_kl,
    paired,
    pool_windows,
    token_divergence,
)
from kdlab.losses import kd_loss, reverse_kd_loss
from kdlab.models import build_model, gpt_spec
from kdlab.text import load_corpus

CONTEXT = 16
PROMPT = 4
TINY = {"width": 16, "depth": 1, "heads": 2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "cats.txt"
    path.write_text("the cat sat on the mat. a dog ran to the log. " * 60, encoding="utf-8")
    return load_corpus(path)


@pytest.fixture(scope="module")
def spec(corpus):
    return gpt_spec(corpus.vocab_size, context=CONTEXT, **TINY)


@pytest.fixture(scope="module")
def teacher(spec):
    return build_model(spec, seed=100).eval()


@pytest.fixture(scope="module")
def pool(corpus):
    return pool_windows(corpus, CONTEXT, size=40)


def same_weights(first, second):
    return all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


# ---------------------------------------------------------------------------------------------- the toy

def test_mixed_kl_is_forward_at_one_reverse_at_zero_and_zero_for_equal_distributions():
    p, q = torch.softmax(torch.randn(3, 7), -1), torch.softmax(torch.randn(3, 7), -1)
    forward = (p * (p.log() - q.log())).sum(-1)
    reverse = (q * (q.log() - p.log())).sum(-1)
    torch.testing.assert_close(mixed_kl(p, q, 1.0), forward)
    torch.testing.assert_close(mixed_kl(p, q, 0.0), reverse)
    torch.testing.assert_close(mixed_kl(p, q, 0.25), 0.25 * forward + 0.75 * reverse)
    torch.testing.assert_close(mixed_kl(p, p, 0.5), torch.zeros(3), atol=1e-7, rtol=0)
    p[:, -1], q[:, -1] = 0, 0  # a bin neither reaches adds nothing, rather than NaN
    assert torch.isfinite(mixed_kl(p, q, 0.5)).all()
    with pytest.raises(ValueError, match="mix must lie between 0"):
        mixed_kl(p, q, 1.5)


def test_forward_kl_covers_both_modes_and_reverse_kl_seeks_one():
    grid = torch.linspace(-7, 7, 141, dtype=torch.float64)
    teacher = 0.5 * gaussian_on_grid(grid, -2.5, 0.7) + 0.5 * gaussian_on_grid(grid, 2.5, 0.7)
    assert gaussian_on_grid(grid, 0.0, 1.0).sum().item() == pytest.approx(1.0)
    forward, reverse = fit_one_mode(teacher, grid, 1.0), fit_one_mode(teacher, grid, 0.0)
    assert abs(forward["mean"]) < 0.1 and forward["sd"] > 2.0  # across both modes
    assert reverse["mean"] == pytest.approx(2.5, abs=0.05) and reverse["sd"] == pytest.approx(0.7, abs=0.05)
    assert fit_one_mode(teacher, grid, 0.0)["mean"] == reverse["mean"]  # the same start, the same fit
    assert fit_one_mode(teacher, grid, 0.0, start=(-1.0, 0.5))["mean"] == pytest.approx(-2.5, abs=0.05)
    with pytest.raises(ValueError, match="of one shape"):
        fit_one_mode(teacher[:-1], grid, 0.5)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        fit_one_mode(teacher, grid, 0.5, steps=0)


# ---------------------------------------------------------------------------------------------- sampling

def test_continue_text_keeps_the_prompts_and_the_same_seed_draws_the_same_text(teacher, pool):
    prompts = pool[:5, :PROMPT]
    first = continue_text(teacher, prompts, 20, seed=3)
    assert first.shape == (5, PROMPT + 20) and first.dtype == torch.long
    assert torch.equal(first[:, :PROMPT], prompts)
    assert torch.equal(first, continue_text(teacher, prompts, 20, seed=3))
    assert not torch.equal(first, continue_text(teacher, prompts, 20, seed=4))
    assert torch.equal(continue_text(teacher, prompts, 20, seed=3, batch_size=2),
                       continue_text(teacher, prompts, 20, seed=3, batch_size=2))
    assert continue_text(teacher, prompts, 0).shape == (5, PROMPT)
    longer = continue_text(teacher, prompts, CONTEXT + 5)  # past the context: reads its last CONTEXT characters
    assert longer.shape == (5, PROMPT + CONTEXT + 5)
    assert not teacher.training


def test_continue_text_draws_what_reading_the_whole_text_each_time_draws(teacher, pool):
    # the reference: no cache, the last CONTEXT characters read whole for every new one, drawn the same way
    def by_rereading(prompts, length, seed):
        generator, ids = torch.Generator().manual_seed(seed), prompts
        for _ in range(length):
            probabilities = torch.softmax(teacher(ids[:, -CONTEXT:])[:, -1], dim=-1)
            ids = torch.cat([ids, torch.multinomial(probabilities, 1, generator=generator)], dim=1)
        return ids

    prompts = pool[:8, :PROMPT]
    with torch.no_grad():
        for length in (CONTEXT - PROMPT, CONTEXT + 6):  # within the context (cached), then past it (sliding)
            assert torch.equal(continue_text(teacher, prompts, length, seed=7), by_rereading(prompts, length, 7))


def test_a_cached_model_reads_one_character_at_a_time_and_gives_the_whole_texts_logits(teacher, pool):
    ids = pool[:3, :CONTEXT]
    with torch.no_grad():
        whole = teacher(ids)
        cache = []
        steps = [teacher(ids[:, :PROMPT], cache=cache)]
        steps += [teacher(ids[:, position:position + 1], cache=cache) for position in range(PROMPT, CONTEXT)]
    assert len(cache) == len(teacher.blocks) and cache[0][0].shape[2] == CONTEXT
    assert torch.allclose(torch.cat(steps, dim=1), whole, atol=1e-5)
    started = []
    teacher(ids[:, :PROMPT], cache=started)
    with pytest.raises(ValueError, match="one new character at a time"):
        teacher(ids[:, PROMPT:PROMPT + 2], cache=started)
    with pytest.raises(ValueError, match=f"at most {CONTEXT} characters"):
        teacher(ids[:, :1], cache=cache)  # the cache is full


def test_continue_text_refuses_bad_input(teacher, pool):
    with pytest.raises(ValueError, match="prompts must be"):
        continue_text(teacher, pool[0, :PROMPT], 5)
    with pytest.raises(ValueError, match="length must be"):
        continue_text(teacher, pool[:2, :PROMPT], -1)
    for temperature in (0, -1.0, float("nan"), "hot"):
        with pytest.raises(ValueError, match="temperature"):
            continue_text(teacher, pool[:2, :PROMPT], 5, temperature=temperature)


def test_the_pool_is_fixed_by_its_seed(corpus):
    first = pool_windows(corpus, CONTEXT, size=10)
    assert first.shape == (10, CONTEXT + 1)
    assert torch.equal(first, pool_windows(corpus, CONTEXT, size=10))
    assert not torch.equal(first, pool_windows(corpus, CONTEXT, size=10, seed=1))
    assert len(pool_windows(corpus, CONTEXT)) == min(language_sources.POOL_WINDOWS,
                                                     len(corpus.train) // CONTEXT)
    with pytest.raises(ValueError, match="the pool needs between 1 and"):
        pool_windows(corpus, CONTEXT, size=10**6)
    held_out = evaluation_windows(corpus, CONTEXT, 3)
    assert held_out.shape == (3, CONTEXT + 1)
    with pytest.raises(ValueError, match="evaluation prompts"):
        evaluation_windows(corpus, CONTEXT, 10**6)


def test_the_teachers_samples_are_cached_and_redrawn_for_another_teacher(corpus, spec, teacher, pool, tmp_path,
                                                                         monkeypatch):
    drawn = load_or_sample_teacher_text(teacher, corpus, pool, root=tmp_path, prompt=PROMPT)
    assert drawn.shape == pool.shape and torch.equal(drawn[:, :PROMPT], pool[:, :PROMPT])
    (path,) = tmp_path.glob("lm-teacher-samples-cats-*-seed0.json")
    assert json.loads(path.read_text())["prompt"] == PROMPT

    def no_drawing(*args, **kwargs):
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr(language_sources, "continue_text", no_drawing)
    assert torch.equal(load_or_sample_teacher_text(teacher, corpus, pool, root=tmp_path, prompt=PROMPT), drawn)
    monkeypatch.undo()

    other_teacher = build_model(spec, seed=101)
    redrawn = load_or_sample_teacher_text(other_teacher, corpus, pool, root=tmp_path, prompt=PROMPT)
    assert not torch.equal(redrawn, drawn)  # other weights: the file is stale, and replaced
    path.write_text("{not json")
    assert torch.equal(load_or_sample_teacher_text(other_teacher, corpus, pool, root=tmp_path, prompt=PROMPT),
                       redrawn)  # a damaged file is redrawn, the same seed giving the same text


def test_the_teachers_samples_refuse_a_prompt_that_leaves_nothing_to_distil(corpus, teacher, pool, tmp_path):
    with pytest.raises(ValueError, match="the prompt must leave characters"):
        load_or_sample_teacher_text(teacher, corpus, pool, root=tmp_path, prompt=CONTEXT)


# ---------------------------------------------------------------------------------------------- distilling

def test_token_divergence_is_kd_loss_or_reverse_kd_loss_at_T1_without_labels():
    student, teacher = torch.randn(2, 5, 9), torch.randn(2, 5, 9)
    labels = torch.zeros(2, 5, dtype=torch.long)
    forward = kd_loss(student, teacher, labels, T=1.0, return_parts=True).kl
    reverse = reverse_kd_loss(student, teacher, labels, T=1.0, return_parts=True).kl
    torch.testing.assert_close(token_divergence(student, teacher, labels, "forward"), forward)
    torch.testing.assert_close(token_divergence(student, teacher, labels, "reverse"), reverse)
    with pytest.raises(ValueError, match="divergence must be one of forward, reverse"):
        token_divergence(student, teacher, labels, "jensen-shannon")


@pytest.mark.parametrize("source", ["text", "teacher", "student"])
def test_each_source_trains_reproducibly(source, spec, teacher, pool):
    data = pool if source != "teacher" else continue_text(teacher, pool[:, :PROMPT], CONTEXT + 1 - PROMPT)
    models = [build_model(spec, seed=0) for _ in range(2)]
    histories = [distill_on_source(model, teacher, data, source=source, steps=6, seed=5, prompt=PROMPT,
                                   batch_size=4, refresh_every=3, fresh_windows=5) for model in models]
    assert same_weights(*models) and histories[0].train_loss == histories[1].train_loss
    assert not same_weights(models[0], build_model(spec, seed=0))  # it learned something
    assert histories[0].steps_completed == 6 and len(histories[0].train_loss) == 6  # each tenth of 6 steps
    assert (histories[0].sampling_seconds > 0) == (source == "student")
    other = build_model(spec, seed=0)
    distill_on_source(other, teacher, data, source=source, steps=6, seed=6, prompt=PROMPT, batch_size=4,
                      refresh_every=3, fresh_windows=5)
    assert not same_weights(models[0], other)  # another seed, other batches


def test_text_and_teacher_sources_see_the_same_batches(spec, teacher, pool):
    """With the same windows and logits, the two sources are the same run: their batches are paired by the seed."""
    logits = language_sources.cache_teacher_logits(teacher, pool)
    models = [build_model(spec, seed=0) for _ in range(2)]
    for model, source in zip(models, ("text", "teacher")):
        distill_on_source(model, teacher, pool, source=source, steps=4, seed=2, prompt=PROMPT, batch_size=4,
                          pool_teacher_logits=logits)
    assert same_weights(*models)


def test_forward_and_reverse_train_differently(spec, teacher, pool):
    models = [build_model(spec, seed=0) for _ in range(2)]
    for model, divergence in zip(models, ("forward", "reverse")):
        distill_on_source(model, teacher, pool, divergence=divergence, steps=4, seed=2, prompt=PROMPT, batch_size=4)
    assert not same_weights(*models)


def test_distill_on_source_refuses_bad_input(spec, teacher, pool):
    model = build_model(spec, seed=0)
    with pytest.raises(ValueError, match="source must be one of text, teacher, student"):
        distill_on_source(model, teacher, pool, source="web", steps=1, prompt=PROMPT)
    with pytest.raises(ValueError, match="divergence must be one of"):
        distill_on_source(model, teacher, pool, divergence="backward", steps=1, prompt=PROMPT)
    with pytest.raises(ValueError, match="must be at least 1"):
        distill_on_source(model, teacher, pool, steps=0, prompt=PROMPT)
    with pytest.raises(ValueError, match="the prompt must leave characters"):
        distill_on_source(model, teacher, pool, steps=1, prompt=0)
    with pytest.raises(ValueError, match="do not match the pool"):
        distill_on_source(model, teacher, pool, steps=1, prompt=PROMPT,
                          pool_teacher_logits=torch.zeros(3, CONTEXT, 5))
    wide = torch.zeros(4, CONTEXT + 3, dtype=torch.long)
    with pytest.raises(ValueError, match="do not fit a context"):
        distill_on_source(model, teacher, wide, steps=1, prompt=PROMPT)


# ---------------------------------------------------------------------------------------------- scoring

def test_known_word_share():
    assert known_word_share(["the cat", "a dog zzq"], {"the", "cat", "dog"}) == pytest.approx(3 / 4)
    assert math.isnan(known_word_share(["1 2 3"], {"the"}))  # no words at all


def test_evaluate_student_scores_held_out_text_and_samples(corpus, spec, teacher):
    held_out = evaluation_windows(corpus, CONTEXT, 4)
    validation = language_sources.text_windows(corpus.validation, CONTEXT)
    student = build_model(spec, seed=0)
    scores = evaluate_student(student, teacher, corpus, validation, held_out[:, :PROMPT], known_words={"the"}, seed=1)
    assert set(scores) == {"validation_loss", "teacher_nll", "own_nll", "samples", "sample_teacher_nll", "known_words"}
    assert len(scores["samples"]) == 4 and all(len(text) == CONTEXT + 1 - PROMPT for text in scores["samples"])
    assert scores["teacher_nll"] == pytest.approx(sum(scores["sample_teacher_nll"]) / 4)
    assert scores == {**evaluate_student(student, teacher, corpus, validation, held_out[:, :PROMPT],
                                         known_words={"the"}, seed=1)}  # the same seed, the same samples
    on_itself = evaluate_student(teacher, teacher, corpus, validation, held_out[:, :PROMPT])
    assert on_itself["teacher_nll"] == pytest.approx(on_itself["own_nll"])


# ---------------------------------------------------------------------------------------------- comparisons

STUDENTS = {"forward": ("text", "forward"), "reverse": ("text", "reverse"), "teacher's samples": ("teacher", "forward"),
            "own samples": ("student", "forward")}


@pytest.fixture(scope="module")
def compared(corpus, spec, teacher, pool):
    teacher_text = continue_text(teacher, pool[:, :PROMPT], CONTEXT + 1 - PROMPT)
    return compare_sources(teacher, corpus, spec, STUDENTS, seeds=(0, 1), warmup_steps=3, steps=4, pool=pool,
                           teacher_text=teacher_text, prompt=PROMPT, evaluation_count=3, batch_size=4,
                           refresh_every=2, fresh_windows=3)


def test_compare_sources_trains_every_student_from_one_start_per_seed(compared):
    assert [run["seed"] for run in compared["runs"]] == [0, 1]
    for run in compared["runs"]:
        assert set(STUDENTS) <= set(run)
        for name in STUDENTS:
            assert run[name]["history"]["steps_completed"] == 4 and len(run[name]["samples"]) == 3
    assert len(compared["prompts"]) == 3 and len(compared["held_out"]) == 3
    assert compared["sampling_seconds"]["own samples"] > 0 == compared["sampling_seconds"]["forward"]
    difference = paired(compared, "forward", "reverse")
    assert isinstance(difference, PairedDifference) and difference["n"] == 2


def test_compare_divergences_is_compare_sources_forward_against_reverse(corpus, spec, teacher, pool, compared):
    headline = compare_divergences(teacher, corpus, spec, seeds=(0, 1), warmup_steps=3, steps=4, pool=pool,
                                   prompt=PROMPT, evaluation_count=3, batch_size=4)
    for run, same in zip(headline["runs"], compared["runs"]):
        assert run["forward"] == same["forward"]["validation_loss"]  # the same students, trained alone
        assert run["reverse"] == same["reverse"]["validation_loss"]
    gain = headline["gain"]
    assert gain["mean"] == pytest.approx(-paired(compared, "forward", "reverse")["mean"])  # forward - reverse
    assert headline["verdict"] == gain.verdict and headline["divergence"] == "reverse"
    assert set(headline["forward"]) == {"mean", "sd"} and headline["teacher"] > 0
    one_seed = compare_divergences(teacher, corpus, spec, seeds=(0,), warmup_steps=0, steps=1, pool=pool,
                                   prompt=PROMPT, evaluation_count=1, batch_size=2)
    assert one_seed["gain"] is None and one_seed["verdict"] == "inconclusive"


def test_comparisons_refuse_bad_input(corpus, spec, teacher, pool):
    with pytest.raises(ValueError, match="compare forward KL with another divergence"):
        compare_divergences(teacher, corpus, spec, divergence="forward")
    with pytest.raises(ValueError, match="compare forward KL with another divergence"):
        compare_divergences(teacher, corpus, spec, divergence="sideways")
    with pytest.raises(ValueError, match="name at least one student"):
        compare_sources(teacher, corpus, spec, {})
    with pytest.raises(ValueError, match="student 'x': source must be one of"):
        compare_sources(teacher, corpus, spec, {"x": ("web", "forward")})
    with pytest.raises(ValueError, match="needs teacher_text"):
        compare_sources(teacher, corpus, spec, {"x": ("teacher", "forward")}, pool=pool, prompt=PROMPT)
    with pytest.raises(ValueError, match="warmup_steps must be 0 or more"):
        compare_sources(teacher, corpus, spec, {"x": ("text", "forward")}, warmup_steps=-1)


def test_ctrl_c_keeps_the_seeds_that_finished(corpus, spec, teacher, pool, monkeypatch):
    calls = []
    real = language_sources.distill_on_source

    def interrupted_on_the_second_seed(*args, seed, **kwargs):
        calls.append(seed)
        if seed == 1:
            raise KeyboardInterrupt
        return real(*args, seed=seed, **kwargs)

    monkeypatch.setattr(language_sources, "distill_on_source", interrupted_on_the_second_seed)
    with pytest.raises(TrainingInterrupted, match="seed 1") as stop:
        compare_sources(teacher, corpus, spec, {"forward": ("text", "forward")}, seeds=(0, 1, 2), warmup_steps=0,
                        steps=2, pool=pool, prompt=PROMPT, evaluation_count=1, batch_size=2)
    assert calls == [0, 1] and [run["seed"] for run in stop.value.partial["runs"]] == [0]


def test_ctrl_c_in_compare_divergences_summarises_the_seeds_that_finished(corpus, spec, teacher, pool, monkeypatch):
    real = language_sources.distill_on_source

    def interrupted_on_the_second_seed(*args, seed, **kwargs):
        if seed == 1:
            raise KeyboardInterrupt
        return real(*args, seed=seed, **kwargs)

    monkeypatch.setattr(language_sources, "distill_on_source", interrupted_on_the_second_seed)
    with pytest.raises(TrainingInterrupted) as stop:
        compare_divergences(teacher, corpus, spec, seeds=(0, 1), warmup_steps=0, steps=2, pool=pool, prompt=PROMPT,
                            evaluation_count=1, batch_size=2)
    partial = stop.value.partial
    assert [run["seed"] for run in partial["runs"]] == [0] and partial["gain"] is None
    assert set(partial["runs"][0]) == {"seed", "forward", "reverse"} and "seed 1" in partial["interrupted"]
