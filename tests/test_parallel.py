import pytest

from neurotwin_db.catalog import Catalog, build_catalog
from neurotwin_db.errors import InputError
from neurotwin_db.parallel import iter_tasks, map_tasks


def _square(x):
    return x * x


def test_local_processes_keep_input_order():
    assert map_tasks(_square, list(range(6)), jobs=2) == [x * x for x in range(6)]
    assert sorted(i for i, _ in iter_tasks(_square, [1, 2, 3], jobs=2)) == [0, 1, 2]


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_dask_scheduler(scheduler):
    assert map_tasks(_square, [1, 2, 3], scheduler=scheduler) == [1, 4, 9]


def test_catalog_build_on_a_dask_cluster(plain_bids, scheduler, tmp_path):
    local = build_catalog(plain_bids, out=tmp_path / "local")
    remote = build_catalog(plain_bids, out=tmp_path / "dask", scheduler=scheduler)
    q = "SELECT * FROM files ORDER BY path"
    assert Catalog(remote.catalog_dir).sql(q) == Catalog(local.catalog_dir).sql(q)


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(InputError, match="dask scheduler"):
        map_tasks(_square, [1], scheduler="tcp://127.0.0.1:9")
