#!/usr/bin/env node
require("../launch.js")("sync-engine");
