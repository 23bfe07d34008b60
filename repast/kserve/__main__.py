"""`python -m repast.kserve ...`: run the KServe transformer (see repast.kserve.model)."""

from repast.kserve.model import main

main()
