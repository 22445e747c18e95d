"""The `msgan` command as a user runs it: subcommands, run-directory contents, sweeps, and errors
that name the fix without a traceback."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from conftest import TINY, run_msgan


def test_help_lists_the_subcommands():
    result = run_msgan("--help")
    assert result.returncode == 0
    for command in ("train", "eval", "sample", "report"):
        assert f"  {command}" in result.stdout


@pytest.mark.parametrize("command,needle", [("eval", "msgan eval run=DIR"), ("sample", "msgan sample run=DIR"),
                                            ("report", "msgan report SWEEP_DIR"),
                                            ("train-classifier", "msgan train-classifier dataset=NAME")])
def test_every_command_has_its_own_help(tmp_path, command, needle):
    """Before, `msgan eval --help` was a Hydra lexer error and `msgan report --help` 'not a directory'."""
    result = run_msgan(command, "--help", cwd=tmp_path)   # from any directory: the configs ship in the package
    assert result.returncode == 0 and result.stdout.startswith(f"usage: {needle}"), result.stderr
    if command in ("eval", "sample"):
        assert f"options (key=value; {command}.yaml)" in result.stdout and "seed:" in result.stdout


@pytest.mark.slow
def test_python_dash_m_is_the_msgan_command():
    result = subprocess.run([sys.executable, "-m", "msgan_cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "commands:" in result.stdout


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    result = run_msgan("train", *TINY, f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr
    return run, result


def test_train_fills_the_run_directory(finished_run):
    run, result = finished_run
    for path in (".hydra/config.yaml", "checkpoints/last.pt", "metrics.json", "samples/final.png", "train.log"):
        assert (run / path).exists(), path
    assert any((run / "tb").iterdir())
    assert f"tensorboard --logdir {run / 'tb'}" in result.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    # eval.metrics=auto: everything that applies to a conditional DCGAN on digits and runs offline
    for name in ("class_acc", "mode_score", "ndb_jsd/ndb", "ndb_jsd/per_class_mean_jsd", "fid/classifier",
                 "kid/classifier_mean", "is/classifier_mean", "pairwise_div/pixel_l1",
                 "precision_recall/classifier_precision", "precision_recall/classifier_recall"):
        assert name in metrics, name
    assert "lpips_div" not in metrics   # its backbone weights are not on this machine
    protocol = json.loads((run / "eval_protocol.json").read_text())
    assert protocol["per_metric"]["ndb_jsd"]["bins"] == 8
    assert protocol["per_metric"]["fid"]["extractor"] == "classifier"
    assert 0 <= protocol["classifier"]["test_accuracy"] <= 1


def test_eval_writes_metrics_and_protocol_and_keeps_the_other_metrics(finished_run):
    run, _ = finished_run
    before = json.loads((run / "metrics.json").read_text())
    protocol_before = json.loads((run / "eval_protocol.json").read_text())
    result = run_msgan("eval", f"run={run}", "metrics=[class_acc]", "num_samples=40")
    assert result.returncode == 0, result.stderr
    after = json.loads((run / "metrics.json").read_text())
    protocol = json.loads((run / "eval_protocol.json").read_text())
    # class_acc was measured again, on 40 samples; every other metric keeps its value and its protocol
    assert protocol["per_metric"]["class_acc"] == {"checkpoint_step": 4, "num_samples": 40, "seed": 0,
                                                   "conditions": "class: 10 classes, balanced"}
    assert protocol_before["per_metric"]["class_acc"]["num_samples"] == 64
    assert set(after) == set(before) and all(after[k] == before[k] for k in before if not k.startswith("class_acc"))
    assert protocol["per_metric"]["ndb_jsd"] == protocol_before["per_metric"]["ndb_jsd"]
    assert set(protocol["metrics"]) == set(protocol_before["metrics"]) and "kept from earlier" in result.stdout


@pytest.mark.parametrize("metrics,needle", [("[lpips_div]", "alexnet-owt-7be5be79.pth"),
                                            ("[fid]", "eval.extractor.weights=PATH")])
def test_metrics_that_need_weights_say_how_to_supply_them(finished_run, metrics, needle):
    run, _ = finished_run
    extra = ["eval.extractor.name=inception"] if metrics == "[fid]" else []
    result = run_msgan("train", *TINY, *extra, f"eval.metrics={metrics}", f"hydra.run.dir={run.parent / 'weights'}")
    assert result.returncode == 2 and needle in result.stderr and "Traceback" not in result.stderr


def test_sample_and_eval_read_a_run_from_before_newer_options(finished_run, tmp_path):
    """A run trained before hardware.compile and hardware.threads existed (its saved config lacks
    them): sample and eval give it today's defaults instead of stopping on a missing key."""
    run, _ = finished_run
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    config = OmegaConf.load(old / ".hydra" / "config.yaml")
    for key in ("compile", "compile_mode", "threads"):
        del config.hardware[key]
    OmegaConf.save(config, old / ".hydra" / "config.yaml")
    sampled = run_msgan("sample", f"run={old}", "n=2", "condition=1", f"out={tmp_path / 'grids'}")
    assert sampled.returncode == 0, sampled.stderr
    evaluated = run_msgan("eval", f"run={old}", "metrics=[class_acc]", "num_samples=64")
    assert evaluated.returncode == 0, evaluated.stderr


def test_sample_writes_a_grid_per_condition(finished_run, tmp_path):
    run, _ = finished_run
    result = run_msgan("sample", f"run={run}", "n=6", "condition=3", "columns=3", f"out={tmp_path}")
    assert result.returncode == 0, result.stderr
    (png,) = tmp_path.glob("*.png")
    assert "class3" in png.name and Image.open(png).size[0] > Image.open(png).size[1]   # 3 columns x 2 rows
    assert run_msgan("sample", f"run={run}", "condition=12").returncode == 2
    npz = run_msgan("sample", f"run={run}", "n=5", "format=npz")
    assert npz.returncode == 0, npz.stderr
    arrays = np.load(Path(npz.stdout.strip().splitlines()[-1]))
    assert arrays["images"].shape == (50, 32, 32, 1) and arrays["images"].dtype == np.uint8   # 10 classes x 5, grey
    assert arrays["labels"].tolist() == [c for c in range(10) for _ in range(5)]
    images = run_msgan("sample", f"run={run}", "n=5", "format=images")   # the same samples, one PNG each
    assert images.returncode == 0, images.stderr
    files = sorted(Path(images.stdout.strip().splitlines()[-1]).glob("*.png"))
    assert len(files) == 50 and files[0].name == "00000-class0.png" and files[-1].name == "00049-class9.png"
    png = np.asarray(Image.open(files[7])).astype(int)[..., :1]   # grey saved as RGB; rounding may differ by 1
    assert np.abs(png - arrays["images"][7]).max() <= 1
    for bad in ("n=0", "n=-3", "columns=0", "n=abc", "format=jpeg"):   # before: ZeroDivisionError / negative dimension tracebacks
        refused = run_msgan("sample", f"run={run}", bad)
        assert refused.returncode == 2 and ("must be a positive whole number" in refused.stderr
                                            or "format must be grid" in refused.stderr), refused.stderr
        assert "Traceback" not in refused.stderr


def test_report_of_a_single_run(finished_run):
    run, _ = finished_run
    result = run_msgan("report", str(run))
    assert result.returncode == 0, result.stderr
    assert "### digits / dcgan" in result.stdout and "| ms(w=1) | 1 |" in result.stdout


@pytest.mark.slow
def test_output_piped_into_a_reader_that_stops_early_is_not_an_error(finished_run):
    run, _ = finished_run
    process = subprocess.Popen([sys.executable, "-m", "msgan_cli.cli", "report", str(run)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()   # like `msgan report DIR | head -0`
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0 and b"Traceback" not in stderr, stderr.decode()


def test_multirun_sweep_and_report(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_msgan("train", "-m", "reg=none,ms", "reg.ms.weight=0.5,2", "seed=0,1", *TINY,
                   "trainer.max_steps=2", "eval.metrics=[pairwise_div]", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    assert len(list(sweep.glob("*/metrics.json"))) == 8
    report = run_msgan("report", str(sweep))
    assert report.returncode == 0, report.stderr
    table, paired = report.stdout.split("Paired with none by seed")
    rows = [line for line in table.splitlines() if line.startswith("| ms") or line.startswith("| none")]
    # The baseline first; reg=none ignores the swept ms weight: its 4 runs are 2 seeds, said so.
    assert [row.split(" | ")[0:3] for row in rows] == [["| none", "2", "4"], ["| ms(w=0.5)", "2", "2"],
                                                        ["| ms(w=2)", "2", "2"]]
    # each weight paired with none's 2 seeds (the mean of its two runs per seed), which 2 seeds cannot decide
    assert [line.split(" | ")[:2] for line in paired.splitlines() if line.startswith("| ms")] == [
        ["| ms(w=0.5)", "2"], ["| ms(w=2)", "2"]]
    assert "With 2 paired seeds the sign-flip test's smallest possible p is 2/2^2 = 0.5" in paired
    assert "seed 0 has 2 runs of the same configuration, averaged" in report.stdout
    assert (sweep / "report.md").exists() and (sweep / "report.csv").exists()
    assert (sweep / "report.png").stat().st_size > 1000     # the metric against the swept weight


@pytest.mark.parametrize("args,needles", [
    (["train", "model=nonexistent"], ["model", "dcgan", "mlp"]),
    (["train", "dataset=imagenet"], ["dataset", "digits", "fashion_mnist"]),
    (["train", "reg=[ms,nonexistent]"], ["nonexistent", "ms", "none"]),
    (["train", "hardware=tpu"], ["hardware", "cpu", "ddp"]),
    (["train", "dataset=fashion_mnist", "dataset.root=/nonexistent/fm"],
     ["/nonexistent/fm", "apt-get install -y dataset-fashion-mnist"]),
    (["train", "reg.ms.wieght=2"], ["reg.ms has no option wieght", "weight"]),
    (["train", "reg=ms", "model.nz=0"], ["ms needs a latent input", "model.nz"]),
    (["eval"], ["run=DIR"]),
    (["eval", "run=/nonexistent"], ["not a msgan run directory"]),
    (["report", "/nonexistent"], ["not a directory"]),
    (["bogus"], ["unknown command"]),
])
def test_user_errors_are_one_clear_message(args, needles, tmp_path):
    tiny = TINY if args[0] == "train" else []
    result = run_msgan(args[0], *tiny, *args[1:], cwd=tmp_path)   # the option under test comes last and wins
    assert result.returncode == 2, result.returncode   # Hydra's own errors too (it exits 1 for them)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    for needle in needles:
        assert needle in output, (needle, output)


def test_train_classifier_caches_it_for_the_metrics(tmp_path):
    options = ["dataset=digits", "eval.classifier.steps=30", "eval.classifier.width=4", "hardware=cpu"]
    result = run_msgan("train-classifier", *options)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().splitlines()[-1].strip())
    assert path.exists() and "test accuracy" in result.stdout
    written = path.stat().st_mtime_ns
    again = run_msgan("train-classifier", *options)      # found in the cache, not retrained
    assert again.returncode == 0 and path.stat().st_mtime_ns == written and result.stdout == again.stdout
    refused = run_msgan("train-classifier", "dataset=grid25")
    assert refused.returncode == 2 and "no class labels" in refused.stderr


def test_report_lists_a_run_with_damaged_files_instead_of_failing(finished_run, tmp_path):
    import shutil

    from msgan_cli.report import build_report
    run, _ = finished_run
    damaged = tmp_path / "sweep" / "0"
    shutil.copytree(run / ".hydra", damaged / ".hydra")
    (damaged / "metrics.json").write_text('{"class_acc": 0.')   # a write cut short by hand, say
    (damaged / "run_info.json").write_text("not json")
    _, text = build_report(tmp_path / "sweep")
    assert "Runs not in the tables: 1" in text and f"{damaged}: its metrics.json is damaged" in text


def test_train_log_and_run_info_tell_the_story_of_a_run(finished_run):
    run, _ = finished_run
    log = (run / "train.log").read_text()
    assert "Start: msgan train hardware=cpu" in log and "| config " in log and "| code " in log
    assert "step 2: D/adv=" in log and "End: step 4," in log
    attempt = json.loads((run / "run_info.json").read_text())["attempts"][-1]
    assert attempt["finished_step"] == 4 and attempt["duration_s"] > 0
    assert attempt["code"].startswith(("git ", "msgan "))


def test_a_crash_leaves_its_traceback_in_train_log(tmp_path, monkeypatch):
    from msgan_cli.train import loop

    def boom(cfg, run_dir):
        raise RuntimeError("a bug, say")

    monkeypatch.setattr(loop, "train", boom)
    run = tmp_path / "run"
    result = run_msgan("train", "hardware=cpu", f"hydra.run.dir={run}")
    assert result.returncode == 1   # a crash, not a user error (2)
    log = (run / "train.log").read_text()
    assert "The run crashed" in log and "Traceback" in log and "RuntimeError: a bug, say" in log


@pytest.mark.parametrize("override,message", [
    ("+trainer.max_step=5", "Unknown option trainer.max_step. Did you mean trainer.max_steps?"),
    ("+hardware.ampp=true", "Unknown option hardware.ampp. Did you mean hardware.amp?"),
    ("trainer.max_steps=abc", "trainer.max_steps must be a whole number; got 'abc'."),
    ("trainer.progress_bar=3", "trainer.progress_bar must be true or false; got 3."),
    ("eval.kid.subsets=1.5", "eval.kid.subsets must be a whole number; got 1.5."),
    ("+dataset.resolutoin=16", "Unknown option dataset.resolutoin. Did you mean dataset.resolution?"),
    ("dataset.test_fraction=much", "dataset.test_fraction must be a number; got 'much'."),
    ("++model.withd=16", "Unknown option model.withd. Did you mean model.width?"),
    ("model.optim.lr_g=fast", "model.optim.lr_g must be a number; got 'fast'."),
])
def test_unknown_keys_and_wrong_types_are_one_sentence(tmp_path, override, message):
    """Before: the typo (Hydra's own suggestion, with +) trained the default budget silently, and a
    string for max_steps ended in a TypeError traceback."""
    result = run_msgan("train", *TINY, override, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("writable", [False, True])
def test_an_output_place_that_cannot_hold_the_run_is_one_sentence(tmp_path, writable, monkeypatch):
    """Before: Hydra's NotADirectoryError / PermissionError traceback from creating the run directory."""
    import errno
    import os
    import tempfile
    if writable:   # a read-only folder (root writes into one: there the file system's answer is given)
        (tmp_path / "locked").mkdir(mode=0o555)
        run, reason = tmp_path / "locked" / "run", "is not writable (Read-only file system)"
        if os.geteuid() == 0:
            real = tempfile.TemporaryFile

            def read_only(*args, dir=None, **kwargs):
                if dir is not None and Path(dir) == tmp_path / "locked":
                    raise OSError(errno.EROFS, "Read-only file system")
                return real(*args, dir=dir, **kwargs)
            monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
        else:
            reason = "is not writable (Permission denied)"
    else:
        (tmp_path / "a_file").write_text("")
        run, reason = tmp_path / "a_file" / "run", "is a file"
    result = run_msgan("train", *TINY, f"hydra.run.dir={run}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"Cannot create the run directory {run}" in result.stderr and reason in result.stderr
    assert "hydra.run.dir=DIR" in result.stderr


def test_a_sweep_with_cfg_job_shows_its_first_run(tmp_path):
    """Before: Hydra's `ValueError: Only one of --run, --multirun, --cfg ...` traceback."""
    import yaml
    result = run_msgan("train", "-m", "seed=3,4", "trainer.max_steps=7,8", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    config = yaml.safe_load(result.stdout)
    assert config["seed"] == 3 and config["trainer"]["max_steps"] == 7
    assert "first run" in result.stderr and not (tmp_path / "multirun").exists()


@pytest.mark.slow
def test_bash_completion_offers_commands_groups_options_and_keys(tmp_path):
    """Hydra's bash function, installed as the README says, asked as bash asks it on <TAB> (COMP_LINE,
    COMP_WORDS, COMP_CWORD), answers through the `msgan` on PATH. Before, it registered `msgan` and
    `train` and never answered."""
    import os
    lines = {"msgan tr": {"train", "train-classifier"}, "msgan train mod": {"model="},
             "msgan train model=": {"model=dcgan", "model=pix2pix", "model=mlp"}, "msgan train reg=m": {"reg=ms", "reg=mdgan"},
             "msgan train trainer.max_s": {"trainer.max_steps="}, "msgan eval r": {"run="}}
    script = ['eval "$(msgan train -sc install=bash)"']
    for line in lines:
        script += [f'COMP_LINE="{line}"; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=($COMP_LINE)',
                   "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); hydra_bash_completion",
                   'echo "${COMPREPLY[*]}"']
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    answers = result.stdout.splitlines()
    assert len(answers) == len(lines), result.stdout + result.stderr
    for (line, expected), answer in zip(lines.items(), answers):
        assert expected <= set(answer.split()), (line, answer)
    assert "complete -o nospace -o default -F hydra_bash_completion msgan\n" in subprocess.run(
        ["msgan", "train", "-sc", "install=bash"], capture_output=True, text=True, env=env).stdout


def test_the_edges_of_the_command_line_are_one_sentence_each(tmp_path):
    """A folder name longer than file systems allow (a 29-line traceback); Hydra's grammar errors, which
    named neither the command nor the fix; a TensorBoard line that breaks when pasted into a shell."""
    too_long = run_msgan("train", *TINY, f"hydra.run.dir={tmp_path / ('a' * 300)}")
    assert too_long.returncode == 2 and "longer than file systems allow (255 bytes)" in too_long.stderr
    assert "Traceback" not in too_long.stderr and "hydra.run.dir=DIR" in too_long.stderr
    for bad in ("trainer.max_steps=(", "model.name=a'b"):
        unreadable = run_msgan("train", *TINY, bad, f"hydra.run.dir={tmp_path / 'run'}")
        assert unreadable.returncode == 2 and unreadable.stderr.startswith(f"msgan train: cannot read the option {bad!r}")
        assert "\"key='a value'\"" in unreadable.stderr and "HYDRA_FULL_ERROR" not in unreadable.stderr
    spaced = tmp_path / "my runs" / "run"
    done = run_msgan("train", *TINY, "trainer.max_steps=1", "eval.metrics=[]", f"hydra.run.dir={spaced}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"tensorboard --logdir '{spaced / 'tb'}'" in done.stdout
