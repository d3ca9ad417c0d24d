"""Locust: a trivial GET in a closed loop with FastHttpUser (its fastest client)."""

from locust import FastHttpUser, constant, task


class PlainGet(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self) -> None:
        self.client.get("/")
