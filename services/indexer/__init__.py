"""The indexer: stores the videos from RabbitMQ in MongoDB and Elasticsearch, in idempotent batches."""
