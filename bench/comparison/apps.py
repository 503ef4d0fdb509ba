from django.apps import AppConfig


class ComparisonConfig(AppConfig):
    name = "bench.comparison"
    label = "bench_comparison"
    verbose_name = "Benchmark comparison endpoints"
