"""The API's page-number pagination (kept light: DRF imports it while importing its generics)."""

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (at most 100); the envelope is DRF's count/next/previous/results."""

    page_size_query_param = "page_size"
    max_page_size = 100
