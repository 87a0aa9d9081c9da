#!/usr/bin/env node
require("../launch.js")("stripe-sync");
