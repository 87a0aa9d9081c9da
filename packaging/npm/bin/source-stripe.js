#!/usr/bin/env node
require("../launch.js")("source-stripe");
