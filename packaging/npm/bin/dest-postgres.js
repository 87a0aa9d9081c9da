#!/usr/bin/env node
require("../launch.js")("dest-postgres");
