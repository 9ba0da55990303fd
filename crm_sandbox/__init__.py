"""Local emulators of the OKKI, Twenty and Jiandaoyun APIs (see ../shared/api/*.md, "Contract")."""
