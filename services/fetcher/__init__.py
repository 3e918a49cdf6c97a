"""The fetcher: polls YouTube within the quota and publishes every new video to RabbitMQ once."""
