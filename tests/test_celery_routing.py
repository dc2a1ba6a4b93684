"""Heavy and light work go to their own queues, each message to exactly one."""

from traceability.celery import app


def test_each_queue_has_its_own_exchange_and_key():
    queues = {q.name: (q.exchange.name, q.routing_key) for q in app.conf.task_queues}
    assert queues == {"light": ("light", "light"), "heavy": ("heavy", "heavy")}


def test_jobs_route_to_heavy_and_the_rest_to_light():
    router = app.amqp.router
    job = router.route({}, "traceability.tasks.job_run")
    expiry = router.route({}, "suppliers.tasks.certificates_expire")
    assert (job["queue"].name, job["queue"].routing_key) == ("heavy", "heavy")
    assert (expiry["queue"].name, expiry["queue"].routing_key) == ("light", "light")
