<?php
// The banner a file-manager shell family prints; the rest is left out of the sample.
$default_action = 'FilesMan';
