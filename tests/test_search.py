"""A two-objective search of the diversity-quality frontier (hydra/sweeper=optuna, docs/running.md#search):
each run hands the sweeper the two numbers msgan report plots, and the search's runs are a sweep like any."""
import pytest
import yaml

from conftest import run_msgan
from msgan_cli import commands, config
from msgan_cli.errors import UserError


def test_a_search_maximises_both_declared_objectives_and_is_seeded_unless_told_otherwise():
    plain = ["-m", "hydra/sweeper=optuna", "reg.ms.weight=interval(0.01,10)"]
    assert config.with_search_defaults(plain) == plain + ["hydra.sweeper.direction=[maximize,maximize]",
                                                          "hydra.sweeper.sampler.seed=0"]
    given = plain + ["hydra.sweeper.direction=[maximize,minimize]", "hydra.sweeper.sampler.seed=3"]
    assert config.with_search_defaults(given) == given
    grid = ["-m", "reg.ms.weight=0.5,1"]
    assert config.with_search_defaults(grid) == grid                 # Hydra's own sweeper: nothing added


def test_the_search_sweeper_not_installed_names_its_extra(monkeypatch):
    monkeypatch.setattr(config.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"hydra/sweeper=optuna needs its Hydra plugin .*pip install -e '\.\[optuna\]'"):
        config.check_launcher_installed(["-m", "hydra/sweeper=optuna", "seed=0,1"])


@pytest.mark.parametrize("objectives,direction,message", [
    (None, ["maximize"], "a search of the diversity-quality frontier has two objectives"),
    (["modes_2d/high_quality"], ["maximize", "maximize"], r"eval.objectives=\['modes_2d/high_quality'\]: give two metrics"),
    (["modes_2d/num_modes_total", "modes_2d/modes"], ["maximize", "maximize"],
     "modes_2d/num_modes_total is not a metric with a better direction"),
    (["modes_2d/kl", "modes_2d/modes"], ["maximize", "maximize"],
     r"hydra.sweeper.direction=\[maximize,maximize\] does not fit the objectives modes_2d/kl, modes_2d/modes: "
     r"give hydra.sweeper.direction=\[minimize,maximize\]"),
])
def test_objectives_that_cannot_be_searched_are_refused_before_training(objectives, direction, message):
    with pytest.raises(UserError, match=message):
        commands.check_search_objectives(objectives, direction)


def test_a_run_returns_the_plane_its_metrics_declare_or_the_one_chosen():
    metrics = {"modes_2d/modes": 7.0, "modes_2d/high_quality": 81.5, "modes_2d/kl": 0.02, "ndb_jsd/ndb": 12.0}
    assert commands.search_objectives(None, ["maximize", "maximize"], metrics) == [81.5, 7.0]
    assert commands.search_objectives(["modes_2d/kl", "modes_2d/modes"], ["StudyDirection.MINIMIZE", "maximize"],
                                      metrics) == [0.02, 7.0]
    with pytest.raises(UserError, match="no metric of this run declares a frontier"):
        commands.search_objectives(None, ["maximize", "maximize"], {"ndb_jsd/ndb": 12.0})
    with pytest.raises(UserError, match="the run computed no fid/classifier"):
        commands.search_objectives(["fid/classifier", "modes_2d/modes"], ["minimize", "maximize"], metrics)


@pytest.mark.slow
def test_a_short_search_on_the_2d_gan_hands_optuna_each_runs_numbers_and_lands_in_the_report(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="the optional sweeper: pip install -e '.[optuna]'")
    search = ["train", "-m", "hydra/sweeper=optuna", "model=mlp", "dataset=ring8", "reg=ms",
              "reg.ms.weight=interval(0.01,10)", "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=1",
              "trainer.max_steps=60", "eval.num_samples=400", "eval.metrics=[modes_2d]"]
    done = run_msgan(*search, f"hydra.sweep.dir={tmp_path / 'first'}")
    assert done.returncode == 0, done.stderr[-3000:]
    trials = {}
    for number in range(3):
        run = tmp_path / "first" / str(number)
        weight = float(yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())[0].split("=")[1])
        metrics = yaml.safe_load((run / "metrics.json").read_text())
        trials[weight] = [metrics["modes_2d/high_quality"], metrics["modes_2d/modes"]]
    results = yaml.safe_load((tmp_path / "first" / "optimization_results.yaml").read_text())
    assert results["solutions"]   # the non-dominated trials, each with the values its run returned
    for solution in results["solutions"]:
        assert solution["values"] == trials[solution["params"]["++reg.ms.weight"]]
    # Seeded: the same search proposes the same weights.
    again = run_msgan(*search, f"hydra.sweep.dir={tmp_path / 'again'}")
    assert again.returncode == 0, again.stderr[-3000:]
    proposed = [yaml.safe_load((tmp_path / "again" / str(n) / ".hydra" / "overrides.yaml").read_text())[0]
                for n in range(3)]
    assert sorted(float(p.split("=")[1]) for p in proposed) == sorted(trials)
    report = run_msgan("report", str(tmp_path / "first"))
    assert report.returncode == 0, report.stderr
    assert report.stdout.count("| ms(w=") == 3 and "- Frontier of modes_2d/high_quality" in report.stdout
