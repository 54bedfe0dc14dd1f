"""Which job a process is a rank of, read from its launcher's environment only."""

from __future__ import annotations

import sys

import pytest

from notebook_carbon import track
from notebook_carbon.distributed import JOB_VARIABLE, detect_job, slurm_count
from notebook_carbon.errors import ConfigError

TORCHRUN = {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4", "GROUP_RANK": "1",
            "MASTER_ADDR": "node-a", "MASTER_PORT": "29500", "TORCHELASTIC_RUN_ID": "none",
            "TORCHELASTIC_RESTART_COUNT": "0"}  # fmt: skip


def test_torchrun_without_rdzv_id_is_named_by_its_rendezvous_address():
    job = detect_job(TORCHRUN)
    assert (job.key, job.how) == ("rendezvous:node-a:29500", "rendezvous")
    assert (job.rank, job.local_rank, job.world_size, job.local_world_size, job.node_rank) == (5, 1, 8, 4, 1)
    assert job.window_s is not None and not job.driver and job.notes == ()
    assert job.describe() == "rank 5 of 8 of job rendezvous:node-a:29500"


def test_torchrun_s_run_id_names_the_job_and_each_restart_is_an_attempt_of_its_own():
    assert detect_job({**TORCHRUN, "TORCHELASTIC_RUN_ID": "3f2a"}).key == "torchelastic:3f2a"
    restarted = {**TORCHRUN, "TORCHELASTIC_RUN_ID": "3f2a", "TORCHELASTIC_RESTART_COUNT": "2"}
    assert detect_job(restarted).key == "torchelastic:3f2a#2"


def test_slurm_names_the_job_with_its_cluster_and_step_and_its_counts_are_read_in_every_form():
    env = {"SLURM_JOB_ID": "4711", "SLURM_STEP_ID": "3", "SLURM_CLUSTER_NAME": "lab", "SLURM_PROCID": "6",
           "SLURM_LOCALID": "2", "SLURM_NODEID": "1", "SLURM_NTASKS": "4(x2)", "SLURM_TASKS_PER_NODE": "4(x2)"}  # fmt: skip
    job = detect_job(env)
    assert (job.key, job.how, job.window_s) == ("slurm:lab/4711.3", "slurm", None)
    assert (job.rank, job.local_rank, job.world_size, job.local_world_size, job.node_rank) == (6, 2, 8, 4, 1)
    assert detect_job({"SLURM_JOB_ID": "9", "SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2"}).key == "slurm:9"
    step = {"SLURM_JOB_ID": "9", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_NTASKS": "2"}
    assert detect_job(step).key == "slurm:9.0" and detect_job(step).world_size == 2
    assert [slurm_count(t) for t in ("8", "4(x2)", "2(x3),1", " 3 ", "x", "4(x)", "", "2(x3),")] == [
        8, 8, 7, 3, None, None, None, None
    ]
    uneven = {**env, "SLURM_NTASKS": "7", "SLURM_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "3"}
    assert detect_job(uneven).local_world_size == 1


def test_torch_s_ranks_win_over_slurm_s_when_srun_starts_torchrun_and_each_restart_is_its_own_job():
    env = {"SLURM_JOB_ID": "4711", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_NTASKS": "2", **TORCHRUN}
    job = detect_job(env)
    assert job.key == "slurm:4711.0" and (job.rank, job.world_size) == (5, 8)
    assert detect_job({**env, "TORCHELASTIC_RESTART_COUNT": "1"}).key == "slurm:4711.0#1"


def test_mpi_launchers():
    ompi = {"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
            "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "OMPI_COMM_WORLD_NODE_RANK": "1", "OMPI_MCA_ess_base_jobid": "1234"}  # fmt: skip
    job = detect_job(ompi)
    assert (job.key, job.how, job.rank, job.world_size, job.local_rank, job.node_rank) == ("mpi:1234", "mpi", 3, 4, 1, 1)
    pmix = {"PMIX_RANK": "2", "PMIX_NAMESPACE": "prterun-node-a-77@1", "OMPI_COMM_WORLD_SIZE": "4"}
    assert detect_job(pmix).key == "mpi:prterun-node-a-77@1"
    # MPICH and Intel MPI name no job: their ranks need a rendezvous address or a name
    mpich = {"PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2"}
    said: list[str] = []
    assert detect_job(mpich, said=said) is None and "NOTEBOOK_CARBON_JOB" in said[0] and "rank 1 of 2" in said[0]
    named = detect_job({**mpich, JOB_VARIABLE: "run-7"})
    assert (named.key, named.how, named.rank, named.local_world_size) == ("run-7", "explicit", 1, 2)


def test_no_job_when_nothing_says_one_or_the_launcher_started_one_process():
    said: list[str] = []
    assert detect_job({}, said=said) is None and said == []
    assert detect_job({"MASTER_ADDR": "a", "MASTER_PORT": "1"}) is None  # no rank: not a rank of anything
    assert detect_job({**TORCHRUN, "WORLD_SIZE": "1", "RANK": "0"}) is None
    assert detect_job({"SLURM_JOB_ID": "4711", "SLURM_PROCID": "0", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "1"}) is None
    # a batch script's own process: --ntasks=4 is the allocation's, the script is one process
    batch = {"SLURM_JOB_ID": "4711", "SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_TASKS_PER_NODE": "4"}
    assert detect_job(batch) is None and detect_job({**batch, "SLURM_STEP_ID": "4294967294"}) is None
    assert detect_job({**TORCHRUN, "MASTER_PORT": ""}, said=said) is None and "rank 5 of 8" in said[0]


def test_an_explicit_name_wins_and_a_bad_one_is_refused():
    assert detect_job(TORCHRUN, "my-job").key == "my-job"
    assert detect_job({JOB_VARIABLE: " from-env "}).key == "from-env"
    assert detect_job({JOB_VARIABLE: " from-env "}, "given").key == "given"
    for bad in ("", "   ", "x" * 201, "a\x00b"):
        with pytest.raises(ConfigError):
            detect_job({}, bad)
    with pytest.raises(ConfigError, match=JOB_VARIABLE):
        detect_job({JOB_VARIABLE: "y" * 300})


def test_a_variable_that_is_not_a_number_is_left_out_and_said():
    job = detect_job({**TORCHRUN, "LOCAL_RANK": "first", "WORLD_SIZE": "8 GPUs"})
    assert job.local_rank is None and job.world_size is None and job.rank == 5
    assert [n.split("=")[0] for n in job.notes] == ["LOCAL_RANK", "WORLD_SIZE"]


def test_track_refuses_a_job_argument_that_is_no_name_at_once():
    with pytest.raises(TypeError, match="job"):
        track(job=True)
    with pytest.raises(TypeError, match="job"):
        track(job=3)
    with pytest.raises(ConfigError, match=r"track\(job=...\): a job is named by a non-empty string"):
        track(job="")


def test_no_framework_is_imported_to_find_out(monkeypatch):
    for name in ("torch", "mpi4py", "deepspeed", "accelerate"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    detect_job({**TORCHRUN, "OMPI_COMM_WORLD_RANK": "1", "SLURM_JOB_ID": "1"})
    assert not {"torch", "mpi4py", "deepspeed", "accelerate"} & set(sys.modules)


def test_a_loopback_rendezvous_is_the_node_s_own_and_a_batch_script_s_torchrun_is_not_the_allocation():
    from notebook_carbon.meters.detect import host_info

    here = host_info()["hostname"]
    local = {**TORCHRUN, "MASTER_ADDR": "127.0.0.1"}
    assert detect_job(local).key == f"rendezvous:127.0.0.1@{here}:29500"  # every machine has a 127.0.0.1
    assert detect_job({**local, "MASTER_ADDR": "localhost"}).key == f"rendezvous:localhost@{here}:29500"
    # torchrun started by the batch script itself (no srun step): the allocation may run two at once
    batch = {**local, "SLURM_JOB_ID": "4711", "SLURM_PROCID": "0", "SLURM_NTASKS": "8"}
    assert detect_job(batch).key == f"rendezvous:127.0.0.1@{here}@slurm:4711:29500"
    assert detect_job({**batch, "MASTER_PORT": "29501"}).key != detect_job(batch).key
    assert detect_job({**batch, "TORCHELASTIC_RUN_ID": "ab12"}).key == "torchelastic:ab12"


def test_the_attempt_is_read_whatever_names_the_job():
    assert detect_job({**TORCHRUN, "TORCHELASTIC_RESTART_COUNT": "2"}, "cell-1").attempt == 2
    assert detect_job({**TORCHRUN, "TORCHELASTIC_RESTART_COUNT": "2"}, "cell-1").key == "cell-1"  # joins its driver
    assert detect_job(TORCHRUN).attempt == 0
