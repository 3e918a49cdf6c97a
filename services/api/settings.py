from __future__ import annotations

from services.common.settings import ApiSettings, ElasticsearchSettings, LoggingSettings, MongoSettings


class Settings(ApiSettings, ElasticsearchSettings, MongoSettings, LoggingSettings):
    pass
