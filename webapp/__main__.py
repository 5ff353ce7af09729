"""python -m webapp"""
from webapp.app import main

main()
