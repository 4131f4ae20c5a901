"""Maps, the field report, the QA verdict, the daily log and GIS layers of a lane survey.

Everything a team leader looks at after ``uxo process``: ``uxo map`` (PNG, PDF,
GeoTIFF of the levelled data), ``uxo report`` (one self-contained HTML or PDF
file), ``uxo qa`` (the procedure's 1 % resurvey verdict), ``uxo daily`` (the
day's log) and ``uxo export-gis`` (GeoPackage). The heavy libraries (verde,
harmonica, matplotlib, tifffile, pyogrio) come with the ``maps`` extra and are
imported only by the modules that draw or write.
"""
